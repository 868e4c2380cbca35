"""Load for emojivoto: voters who list, vote and look at the leaderboard.

Every request is named, so Locust's statistics keep each route apart. Votes for
:poop: fail by the app's design; they are named ``vote :poop: (declared failure)`` so
the harness can count them as their own class (they must fail) and leave them out
of the other requests' success rate.
"""

from __future__ import annotations

import random

from _pacing import per_user_throughput
from locust import FastHttpUser, constant_throughput, task

# Emoji that can be voted for successfully (the app offers these and more).
VOTABLE = (
    ":joy:", ":sunglasses:", ":doughnut:", ":ghost:", ":rocket:", ":pizza:",
    ":taco:", ":rainbow:", ":tada:", ":trophy:", ":fire:", ":100:",
)  # fmt: skip


class PacedVoter(FastHttpUser):
    """A voter paced to a constant throughput (one request per task)."""

    wait_time = constant_throughput(per_user_throughput())

    @task(3)
    def list_emoji(self) -> None:
        self.client.get("/api/list", name="list")

    @task(5)
    def vote(self) -> None:
        choice = random.choice(VOTABLE)
        self.client.get(f"/api/vote?choice={choice}", name="vote")

    @task(1)
    def vote_poop(self) -> None:
        self.client.get(
            "/api/vote?choice=:poop:", name="vote :poop: (declared failure)"
        )

    @task(1)
    def leaderboard(self) -> None:
        self.client.get("/api/leaderboard", name="leaderboard")
