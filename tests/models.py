from __future__ import annotations

import uuid

from django.db import models

from django_pageviews.mixins import PageViewMixin


class Article(PageViewMixin, models.Model):
    title = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)

    def __str__(self) -> str:
        return self.title


class Document(models.Model):
    """A model with a UUID primary key and a slug field of another name."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    code = models.CharField(max_length=50, unique=True)

    def __str__(self) -> str:
        return self.code


class Ticket(models.Model):
    """A model looked up by an integer field, as a slug_field (drain tests: a URL value
    that is not a number)."""

    number = models.IntegerField(unique=True)

    def __str__(self) -> str:
        return f"#{self.number}"
