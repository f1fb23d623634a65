from django.urls import path

from . import views

urlpatterns = [
    path("polls", views.PollListView.as_view(), name="polls"),
    path("polls/<int:schedule_id>/stop", views.PollStopView.as_view(), name="poll-stop"),
]
