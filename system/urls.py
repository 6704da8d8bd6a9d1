from django.urls import path

from . import metrics, views

urlpatterns = [
    path("health/", views.alive, name="health"),
    path("ready/", views.ready, name="ready"),
    path("metrics", metrics.metrics, name="metrics"),
    path("api/system/", views.system, name="api-system"),
    path("dead-letters/", views.dead_letters_page, name="dead-letters"),
    path("api/dead-letters/", views.dead_letters, name="api-dead-letters"),
]
