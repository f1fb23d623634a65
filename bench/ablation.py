"""The parts of a send's request path that `bench/inprocess.py --without` can take out.

Each is one a bearer API call passes through but that the send itself does
not need to be correct. Taking them out one by one (instructions per request,
with --valgrind) tells where a send's CPU above the floor (bench/floor.py)
goes, and what removing a part would buy. bench/ablation_settings.py applies
them; this module imports no Django, so that the bench's command line can
list them.
"""

PARTS = {
    "throttle": "DRF's throttles (sqs_app.throttling): the per-user counters in the cache",
    "browser-middleware": "every middleware but the request id, the API metrics and the size limit",
    "browsable-api": "the browsable API's renderer, so that DRF negotiates JSON alone",
}

# The middleware a bearer API call cannot do without (see "browser-middleware").
API_MIDDLEWARE = [
    "sqs_app.middleware.RequestIdMiddleware",
    "sqs_app.metrics.ApiMetricsMiddleware",
    "sqs_app.middleware.RequestSizeLimitMiddleware",
]

ENV_VAR = "WIPSIE_BENCH_WITHOUT"


def parse(text: str) -> list[str]:
    """`throttle,browsable-api` -> the parts, in PARTS's order; an unknown name is a ValueError."""
    named = {part.strip() for part in text.split(",") if part.strip()}
    unknown = named - set(PARTS)
    if unknown:
        raise ValueError(f"unknown parts {', '.join(sorted(unknown))}; choose from {', '.join(PARTS)}")
    return [part for part in PARTS if part in named]


def overrides(parts: list[str], *, middleware: list[str], rest_framework: dict) -> dict:
    """The settings that take `parts` out of Wipsie's `middleware` and `rest_framework`."""
    changed: dict = {}
    drf_changes: dict = {}
    if "throttle" in parts:
        drf_changes["DEFAULT_THROTTLE_CLASSES"] = []
    if "browsable-api" in parts:
        drf_changes["DEFAULT_RENDERER_CLASSES"] = ["rest_framework.renderers.JSONRenderer"]
    if drf_changes:
        changed["REST_FRAMEWORK"] = {**rest_framework, **drf_changes}
    if "browser-middleware" in parts:
        missing = [name for name in API_MIDDLEWARE if name not in middleware]
        if missing:  # Wipsie renamed or dropped one: the ablation would measure something else
            raise ValueError(f"Wipsie's MIDDLEWARE no longer has {missing}")
        changed["MIDDLEWARE"] = API_MIDDLEWARE
    return changed
