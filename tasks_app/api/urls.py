from django.urls import path

from . import views

urlpatterns = [
    path("polls", views.PollListView.as_view(), name="polls"),
    path("polls/<int:schedule_id>/stop", views.PollStopView.as_view(), name="poll-stop"),
    path("polls/<int:schedule_id>/pause", views.PollPauseView.as_view(), name="poll-pause"),
    path("polls/<int:schedule_id>/resume", views.PollResumeView.as_view(), name="poll-resume"),
    path("polls/<int:schedule_id>/run", views.PollRunView.as_view(), name="poll-run"),
]
