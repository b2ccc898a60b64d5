"""The views of a deleted content type go with it, on whichever database they are.

The app's foreign keys to ``ContentType`` say ``DO_NOTHING``: Django's own cascade
collects the related rows on the database of the content type being deleted, where the
app's tables are not when ``PAGEVIEW_DATABASE`` puts them elsewhere (the deletion, and
``remove_stale_contenttypes`` with it, would fail on a missing table). This receiver does
what the cascade did, on the database the router gives each table.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.db import router


def delete_views_of(sender: type[Any], instance: Any, using: str, **kwargs: Any) -> None:
    """``pre_delete`` of a content type: delete the app's rows that name it. Only for the
    content types the views name, those of the database the router reads them from: a
    copy elsewhere (another database's unused table) names nothing of the app's."""
    if using != router.db_for_read(sender):
        return
    for model in apps.get_app_config("django_pageviews").get_models():
        if model._meta.proxy or not any(f.name == "content_type" for f in model._meta.fields):
            continue
        rows = model._base_manager.using(router.db_for_write(model))
        rows.filter(content_type_id=instance.pk).delete()
