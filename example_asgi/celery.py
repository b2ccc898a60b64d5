import os
from celery import Celery

# Set the default Django settings module
os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'example_asgi.settings')

# Create the Celery app
app = Celery('example_asgi')

# Load settings from Django settings
app.config_from_object('django.conf:settings', namespace='CELERY')

# Auto-discover tasks in all installed apps
app.autodiscover_tasks()

# Optional: Define Celery beat schedule for periodic tasks
app.conf.beat_schedule = {
    'process-pageview-buffer': {
        'task': 'django_pageviews.tasks.process_pageview_buffer',
        'schedule': 60.0,  # Run every minute
    },
    'cleanup-old-buffer-data': {
        'task': 'django_pageviews.tasks.cleanup_old_buffer_data',
        'schedule': 300.0,  # Run every 5 minutes
    },
}
