"""bench/ablation.py: the parts `bench/inprocess.py --without` takes out, against Wipsie's settings."""

import pytest
from django.conf import settings

from bench import ablation


def test_parse_keeps_the_parts_order_and_refuses_an_unknown_part():
    assert ablation.parse("browsable-api, throttle") == ["throttle", "browsable-api"]
    assert ablation.parse("") == []
    with pytest.raises(ValueError, match="unknown parts bogus; choose from throttle"):
        ablation.parse("throttle,bogus")


def test_each_part_changes_only_its_own_setting():
    rest_framework = settings.REST_FRAMEWORK
    wipsies = {"middleware": settings.MIDDLEWARE, "rest_framework": rest_framework}
    throttles = list(rest_framework["DEFAULT_THROTTLE_CLASSES"])
    renderers = rest_framework["DEFAULT_RENDERER_CLASSES"]

    assert ablation.overrides([], **wipsies) == {}
    no_throttle = ablation.overrides(["throttle"], **wipsies)
    assert set(no_throttle) == {"REST_FRAMEWORK"}
    assert no_throttle["REST_FRAMEWORK"]["DEFAULT_THROTTLE_CLASSES"] == []
    assert no_throttle["REST_FRAMEWORK"]["DEFAULT_RENDERER_CLASSES"] == renderers
    lean = ablation.overrides(["browser-middleware"], **wipsies)
    assert lean == {"MIDDLEWARE": ablation.API_MIDDLEWARE}
    # Wipsie's own settings are left as they were: the overrides are new objects.
    assert throttles and rest_framework["DEFAULT_THROTTLE_CLASSES"] == throttles


def test_the_api_middleware_it_keeps_is_wipsies_and_in_wipsies_order():
    kept = [name for name in settings.MIDDLEWARE if name in ablation.API_MIDDLEWARE]
    assert kept == ablation.API_MIDDLEWARE
    with pytest.raises(ValueError, match="no longer has"):
        ablation.overrides(["browser-middleware"], middleware=kept[1:], rest_framework={})
