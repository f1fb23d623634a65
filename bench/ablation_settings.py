"""Wipsie's settings with the parts named in WIPSIE_BENCH_WITHOUT taken out (bench/ablation.py).

Only for `bench/inprocess.py --without`; never a server's settings.
"""

import os

from bench import ablation
from wipsie_site.settings import *  # noqa: F403
from wipsie_site.settings import MIDDLEWARE, REST_FRAMEWORK

globals().update(
    ablation.overrides(
        ablation.parse(os.environ.get(ablation.ENV_VAR, "")),
        middleware=MIDDLEWARE,
        rest_framework=REST_FRAMEWORK,
    )
)
