"""Load for the web demo: visitors who open the page and call its JSON endpoint."""

from __future__ import annotations

from _pacing import per_user_throughput
from locust import FastHttpUser, constant_throughput, task


class PagedVisitor(FastHttpUser):
    """A visitor paced to a constant throughput: the page, then the API, in turn."""

    wait_time = constant_throughput(per_user_throughput())

    @task(1)
    def page(self) -> None:
        self.client.get("/", name="page /")

    @task(2)
    def info(self) -> None:
        self.client.get("/api/info", name="api /api/info")
