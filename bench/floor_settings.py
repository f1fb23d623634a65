"""Settings of the floor server (bench/floor.py): Wipsie's own, without middleware, with the floor's URLs.

The same database pool, boto3 client, JWT keys and logging as the real server,
so that the two differ only by what Wipsie does on a send.
"""

from wipsie_site.settings import *  # noqa: F403

MIDDLEWARE = []
ROOT_URLCONF = "bench.floor"
