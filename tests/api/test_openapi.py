"""The OpenAPI schema at /api/schema/ and the Swagger UI at /api/docs/."""

import pytest
import yaml
from django.core.management import call_command

pytestmark = pytest.mark.django_db

SQS_PATHS = {
    "/sqs/queues": {"get"},
    "/sqs/send": {"post"},
    "/sqs/send-batch": {"post"},
    "/sqs/receive/{queue_name}": {"get"},
    "/sqs/message/{queue_name}": {"delete"},
    "/sqs/test-message": {"post"},
    "/sqs/messages": {"get"},
    "/sqs/messages/{message_id}": {"get"},
}
ENVELOPE_REF = "#/components/schemas/ErrorEnvelope"


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from rest_framework.test import APIClient

    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema/?format=json")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    return response.json()


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield path, method, operation


def test_the_schema_loads_as_openapi_3(schema):
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Wipsie API"


def test_the_schema_is_served_as_yaml_by_default(anon_client):
    response = anon_client.get("/api/schema/")

    assert response.status_code == 200
    assert yaml.safe_load(response.content)["info"]["title"] == "Wipsie API"


def test_the_schema_lists_every_sqs_path_and_method(schema):
    for path, methods in SQS_PATHS.items():
        assert path in schema["paths"], path
        assert methods <= set(schema["paths"][path]), path


def test_the_schema_lists_health_and_the_token_endpoints(schema):
    assert {"/health", "/api/token/", "/api/token/refresh/"} <= set(schema["paths"])


def test_every_sqs_error_response_references_the_envelope(schema):
    checked = 0
    for path, method, operation in operations(schema):
        if not path.startswith("/sqs/"):
            continue
        for code, response in operation["responses"].items():
            if code[0] in "45":
                assert response["content"]["application/json"]["schema"] == {"$ref": ENVELOPE_REF}, (
                    method,
                    path,
                    code,
                )
                checked += 1
    assert checked >= 8 * 3


@pytest.mark.parametrize(("path", "method"), [(p, m) for p, ms in SQS_PATHS.items() for m in ms])
def test_every_sqs_operation_documents_its_401_429_and_500(schema, path, method):
    assert {"401", "429", "500"} <= set(schema["paths"][path][method]["responses"])


def test_the_envelope_schema_names_every_key(schema):
    components = schema["components"]["schemas"]

    assert components["ErrorEnvelope"]["properties"] == {
        "error": {"$ref": "#/components/schemas/ErrorDetail"}
    }
    detail = components["ErrorDetail"]
    assert set(detail["properties"]) == {"code", "message", "details", "timestamp", "request_id"}
    assert set(detail["required"]) == set(detail["properties"])


def test_the_send_response_schema_is_the_spec_shape(schema):
    send = schema["paths"]["/sqs/send"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    component = schema["components"]["schemas"][send["$ref"].rsplit("/", 1)[1]]

    assert set(component["properties"]) == {"message_id", "queue", "status", "timestamp"}


def test_the_schema_declares_jwt_and_session_authentication(schema):
    schemes = schema["components"]["securitySchemes"]

    assert schemes["jwtAuth"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert "cookieAuth" in schemes


def test_the_schema_is_valid_openapi_and_generates_without_warnings(tmp_path):
    # --validate raises on a schema that breaks the OpenAPI specification;
    # --fail-on-warn on anything drf-spectacular had to guess.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))

    assert "/sqs/send" in yaml.safe_load((tmp_path / "schema.yml").read_text())["paths"]


def test_the_docs_page_renders_swagger_ui_on_the_schema(anon_client):
    response = anon_client.get("/api/docs/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert '<div id="swagger-ui">' in page
    assert "/api/schema/" in page


# --- What the schema says matches what the API does (also checked live: test_schemathesis.py) ----


def component(schema, ref: str) -> dict:
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]


def test_the_history_list_is_documented_as_a_page(schema):
    ok = schema["paths"]["/sqs/messages"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    page = component(schema, ok["$ref"])

    assert set(page["properties"]) == {"count", "next", "previous", "results"}
    assert page["properties"]["results"]["type"] == "array"


@pytest.mark.parametrize("path", ["/api/token/", "/api/token/refresh/", "/api/token/logout/"])
def test_the_token_endpoints_document_their_errors(schema, path):
    responses = schema["paths"][path]["post"]["responses"]

    assert {"200", "400", "401", "415", "422", "429"} <= set(responses)
    assert responses["401"]["content"]["application/json"]["schema"] == {"$ref": ENVELOPE_REF}


def test_a_refresh_returns_both_tokens_in_the_schema(schema):
    ok = schema["paths"]["/api/token/refresh/"]["post"]["responses"]["200"]["content"]["application/json"]
    assert set(component(schema, ok["schema"]["$ref"])["properties"]) == {"access", "refresh"}


def test_redrive_documents_its_400_and_a_non_empty_selection(schema):
    redrive = schema["paths"]["/sqs/dlq/{queue_name}/redrive"]["post"]
    body = redrive["requestBody"]["content"]["application/json"]["schema"]

    assert "400" in redrive["responses"]
    assert component(schema, body["$ref"])["properties"]["message_ids"]["minItems"] == 1


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/sqs/send", "post"),
        ("/sqs/send-batch", "post"),
        ("/sqs/test-message", "post"),
        ("/sqs/receive/{queue_name}", "get"),
        ("/sqs/message/{queue_name}", "delete"),
        ("/sqs/dlq/{queue_name}/redrive", "post"),
        ("/sqs/polls/{schedule_id}/stop", "post"),
        ("/sqs/polls/{schedule_id}/pause", "post"),
        ("/sqs/polls/{schedule_id}/resume", "post"),
        ("/sqs/polls/{schedule_id}/run", "post"),
    ],
)
def test_every_action_documents_its_403(schema, path, method):
    assert "403" in schema["paths"][path][method]["responses"]


def test_queue_names_are_documented_as_the_logical_queues(schema):
    receive = schema["paths"]["/sqs/receive/{queue_name}"]["get"]
    (queue,) = [p for p in receive["parameters"] if p["name"] == "queue_name"]

    assert set(queue["schema"]["enum"]) == {"default", "data_polling", "task_processing", "notifications"}


@pytest.mark.parametrize("action", ["pause", "resume", "run"])
def test_poll_actions_document_that_a_stopped_poll_is_a_conflict(schema, action):
    responses = schema["paths"][f"/sqs/polls/{{schedule_id}}/{action}"]["post"]["responses"]

    assert {"200", "403", "404", "409"} <= set(responses)
