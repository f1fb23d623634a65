"""The deployment files agree with the app: Dockerfile, .dockerignore, docker-compose.yml, k8s/.

Nothing here builds an image or talks to a cluster (this machine has no Docker
engine): the files are parsed and checked against the code they will run. No
database and no network.
"""

import fnmatch
import json
import re
import shlex
from pathlib import Path

import django
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"

APP_SERVICES = ("web", "worker", "beat", "migrate")
API_PORT = 8000
API_IMAGE = "wipsie/api"
# Values that must come from a Secret in Kubernetes, never from the ConfigMap.
SECRET_SETTINGS = {
    "DATABASE_URL",
    "SECRET_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "EMAIL_URL",
    "WEBHOOK_SIGNING_SECRET",
}
# Read by boto3 and Django's createsuperuser themselves rather than by settings.py.
STANDARD_ENV_NAMES = {
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_SNS",
    "DJANGO_SUPERUSER_USERNAME",
    "DJANGO_SUPERUSER_PASSWORD",
    "DJANGO_SUPERUSER_EMAIL",
    # prometheus_client's own (multiprocess mode).
    "PROMETHEUS_MULTIPROC_DIR",
}
WORKER_DEPLOYMENTS = (
    "wipsie-worker-data-polling",
    "wipsie-worker-task-processing",
    "wipsie-worker-notifications",
)


# --- Reading the files ------------------------------------------------------------


def load_yaml(path: Path) -> list:
    with path.open() as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def env_names_read_by_the_app() -> set[str]:
    """Every variable name settings.py and gunicorn.conf.py read, found by reading their source."""
    settings_source = (ROOT / "wipsie_site" / "settings.py").read_text()
    # env.str("X", env.int("X", env.email_url("X", ... (env.db_url_config takes a value, not a name)
    names = set(re.findall(r"""\benv\.\w+\(\s*["']([A-Z][A-Z0-9_]*)["']""", settings_source))
    names |= set(re.findall(r"""\benv_list\(\s*["']([A-Z][A-Z0-9_]*)["']""", settings_source))
    gunicorn_source = (ROOT / "gunicorn.conf.py").read_text()
    names |= set(re.findall(r"""os\.environ\.get\(\s*["']([A-Z][A-Z0-9_]*)["']""", gunicorn_source))
    return names | STANDARD_ENV_NAMES


def parse_dockerfile(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, arguments = line.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def exec_form(arguments: str) -> list[str]:
    """A CMD/ENTRYPOINT written as a JSON array (the exec form, so signals reach gunicorn)."""
    value = json.loads(arguments)
    assert isinstance(value, list), f"not in exec form: {arguments}"
    return value


def as_argv(command) -> list[str]:
    return list(command) if isinstance(command, list) else shlex.split(command)


def shell_steps(argv: list[str]) -> list[list[str]]:
    """The simple commands a container runs: `sh -c "a && b"` is a and b."""
    if len(argv) >= 3 and argv[0] in ("sh", "bash", "/bin/sh", "/bin/bash") and argv[1] == "-c":
        steps = re.split(r"&&|;|\|\|", argv[2])
        return [shlex.split(step) for step in steps if step.strip()]
    return [argv]


def environment_names(environment) -> set[str]:
    """A compose `environment:`, written as a mapping or as a list of NAME=value."""
    if isinstance(environment, dict):
        return set(environment)
    return {item.split("=", 1)[0] for item in environment or []}


@pytest.fixture(scope="module")
def compose() -> dict:
    (document,) = load_yaml(ROOT / "docker-compose.yml")
    return document


@pytest.fixture(scope="module")
def manifests() -> dict[tuple[str, str], dict]:
    """Every Kubernetes object in k8s/, by (kind, name)."""
    objects = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in load_yaml(path):
            key = (document["kind"], document["metadata"]["name"])
            assert key not in objects, f"{key} is defined twice"
            objects[key] = document
    return objects


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return parse_dockerfile(ROOT / "Dockerfile")


def workloads(manifests) -> dict[str, dict]:
    """The pod-running objects (Deployments, Jobs, and CronJobs as the Job they make), by name."""
    found = {name: obj for (kind, name), obj in manifests.items() if kind in ("Deployment", "Job")}
    for (kind, name), obj in manifests.items():
        if kind == "CronJob":
            found[name] = {**obj, "spec": obj["spec"]["jobTemplate"]["spec"]}
    return found


def containers_of(workload: dict) -> list[dict]:
    spec = workload["spec"]["template"]["spec"]
    return spec.get("initContainers", []) + spec["containers"]


def only_container(manifests, name: str) -> dict:
    (container,) = workloads(manifests)[name]["spec"]["template"]["spec"]["containers"]
    return container


def configmap(manifests) -> dict:
    return manifests[("ConfigMap", "wipsie-config")]


def secret_example_keys() -> dict[str, set[str]]:
    secrets = {}
    for document in load_yaml(K8S / "secret.example.yaml"):
        assert document["kind"] == "Secret"
        secrets[document["metadata"]["name"]] = set(document.get("stringData", {})) | set(
            document.get("data", {})
        )
    return secrets


def all_commands(compose, manifests, dockerfile) -> dict[str, list[str]]:
    """Every command a container of ours starts with, by where it is written."""
    commands = {f"compose {name}": as_argv(compose["services"][name]["command"]) for name in APP_SERVICES}
    for name, workload in workloads(manifests).items():
        for container in containers_of(workload):
            argv = container.get("command", []) + container.get("args", [])
            if argv:
                commands[f"k8s {name}/{container['name']}"] = argv
    (cmd,) = [arguments for keyword, arguments in final_stage(dockerfile) if keyword == "CMD"]
    commands["Dockerfile CMD"] = exec_form(cmd)
    return commands


def resolve_port(container: dict, port) -> int:
    """A probe's or Service's port, given as a number or as the name of a containerPort."""
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in container.get("ports", []) if p.get("name") == port]
    return number


# --- The app's own variable names ----------------------------------------------------


def test_the_settings_scan_finds_the_variables_the_settings_read():
    names = env_names_read_by_the_app()
    # A scan that silently found nothing would let every other name check pass.
    for expected in (
        "SECRET_KEY",
        "DEBUG",
        "DATABASE_URL",
        "ALLOWED_HOSTS",
        "CORS_ORIGINS",
        "EMAIL_URL",
        "AWS_REGION",
        "SQS_QUEUE_PREFIX",
        "LOG_FORMAT",
        "WEB_CONCURRENCY",
        "GUNICORN_THREADS",
    ):
        assert expected in names


def test_every_variable_compose_gives_the_app_is_one_the_app_reads(compose):
    known = env_names_read_by_the_app()
    for name in APP_SERVICES:
        unknown = environment_names(compose["services"][name].get("environment")) - known
        assert not unknown, f"compose service {name} sets variables nothing reads: {sorted(unknown)}"


def test_every_variable_kubernetes_gives_the_app_is_one_the_app_reads(manifests):
    known = env_names_read_by_the_app()
    unknown = set(configmap(manifests)["data"]) - known
    assert not unknown, f"the ConfigMap has keys nothing reads: {sorted(unknown)}"
    for name, workload in workloads(manifests).items():
        for container in containers_of(workload):
            unknown = {item["name"] for item in container.get("env", [])} - known
            assert not unknown, f"{name}/{container['name']} sets variables nothing reads: {sorted(unknown)}"


# --- Dockerfile and .dockerignore -------------------------------------------------------


def test_the_dockerfile_builds_on_python_3_11_slim(dockerfile):
    stages = [arguments.split() for keyword, arguments in dockerfile if keyword == "FROM"]
    stage_names = {words[2].lower() for words in stages if len(words) == 3 and words[1].upper() == "AS"}
    bases = {words[0] for words in stages if words[0].lower() not in stage_names}
    assert bases == {"python:3.11-slim"}


def test_the_dockerfile_installs_requirements_txt_and_not_the_dev_requirements(dockerfile):
    runs = [arguments for keyword, arguments in dockerfile if keyword == "RUN"]
    assert any(re.search(r"pip install\b.*-r \S*requirements\.txt\b", run) for run in runs)
    assert not any("requirements-dev" in arguments for _, arguments in dockerfile)


def test_the_dockerfile_runs_as_a_non_root_user(dockerfile):
    users = [arguments for keyword, arguments in final_stage(dockerfile) if keyword == "USER"]
    assert users, "the final stage has no USER: the container would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    # Kubernetes can only check runAsNonRoot against a numeric user.
    assert user.isdigit()


def test_the_dockerfile_exposes_port_8000_with_a_health_check_on_health(dockerfile):
    stage = final_stage(dockerfile)
    exposed = {
        port.split("/")[0]
        for keyword, arguments in stage
        if keyword == "EXPOSE"
        for port in arguments.split()
    }
    assert str(API_PORT) in exposed
    (healthcheck,) = [arguments for keyword, arguments in stage if keyword == "HEALTHCHECK"]
    assert "/health" in healthcheck
    assert "API_PORT', '8000'" in healthcheck or f":{API_PORT}/health" in healthcheck


def test_the_dockerfile_cmd_runs_gunicorn_with_the_wsgi_module_and_its_config(dockerfile):
    (cmd,) = [arguments for keyword, arguments in final_stage(dockerfile) if keyword == "CMD"]
    assert exec_form(cmd) == ["gunicorn", "wipsie_site.wsgi", "-c", "gunicorn.conf.py"]


def test_the_dockerfile_collects_static_files_with_a_build_only_secret_key(dockerfile):
    (collect,) = [
        arguments for keyword, arguments in dockerfile if keyword == "RUN" and "collectstatic" in arguments
    ]
    assert re.search(r"\bSECRET_KEY=\S+", collect)
    assert re.search(r"\bDEBUG=false\b", collect)
    # Given on that RUN line only: an ENV or ARG would leave it in the image.
    for keyword, arguments in dockerfile:
        if keyword in ("ENV", "ARG"):
            assert "SECRET_KEY" not in arguments, f"{keyword} {arguments}"


def test_static_files_are_served_by_whitenoise_in_production():
    # Django serves no static files with DEBUG off: without WhiteNoise the admin has no CSS.
    assert re.search(r"^whitenoise\b", (ROOT / "requirements.txt").read_text(), re.MULTILINE)
    assert "whitenoise.middleware.WhiteNoiseMiddleware" in (ROOT / "wipsie_site" / "settings.py").read_text()


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def is_ignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        for candidate in (pattern, pattern.removeprefix("**/")):
            if fnmatch.fnmatch(path, candidate) or path.startswith(candidate + "/"):
                ignored = not negate
    return ignored


def test_the_dockerignore_keeps_the_virtualenv_git_and_local_database_out_of_the_image():
    patterns = dockerignore_patterns()
    for path in (".venv", ".git", "db.sqlite3", ".env", ".venv/bin/python", ".git/HEAD"):
        assert is_ignored(path, patterns), f"{path} would be sent to the Docker build"


def test_the_dockerignore_keeps_what_the_image_needs():
    patterns = dockerignore_patterns()
    needed = ["requirements.txt", "manage.py", "gunicorn.conf.py", "templates"]
    needed += [f"{app}/__init__.py" for app in ("wipsie_site", "sqs_app", "tasks_app")]
    for path in needed:
        assert (ROOT / path).exists(), path
        assert not is_ignored(path, patterns), f"{path} is needed in the image but ignored"


# --- Commands point at real code -------------------------------------------------------------


def management_command_exists(name: str) -> bool:
    if any(ROOT.glob(f"*/management/commands/{name}.py")):
        return True
    return any(Path(django.__file__).parent.glob(f"**/management/commands/{name}.py"))


def test_every_command_names_modules_and_management_commands_that_exist(compose, manifests, dockerfile):
    checked = set()
    for where, argv in all_commands(compose, manifests, dockerfile).items():
        for step in shell_steps(argv):
            program = Path(step[0]).name
            if program == "gunicorn":
                module = step[1]
                assert (ROOT / (module.replace(".", "/") + ".py")).is_file(), f"{where}: no module {module}"
                config = step[step.index("-c") + 1]
                assert (ROOT / config).is_file(), f"{where}: no gunicorn config {config}"
                checked.add("gunicorn")
            elif program == "celery":
                app = step[step.index("-A") + 1]
                celery_module = ROOT / app.replace(".", "/") / "celery.py"
                assert celery_module.is_file(), f"{where}: no Celery app module {celery_module}"
                assert re.search(r"^app = \w*Celery\(", celery_module.read_text(), re.MULTILINE)
                assert step[step.index("-A") + 2] in ("worker", "beat"), where
                checked.add("celery")
            elif program in ("python", "python3") and step[1:2] == ["manage.py"]:
                assert management_command_exists(step[2]), f"{where}: no management command {step[2]}"
                checked.add("manage.py")
            else:
                pytest.fail(f"{where}: unexpected command {step}")
    assert checked == {"gunicorn", "celery", "manage.py"}


def test_the_migrate_steps_apply_migrations_then_create_the_queues(compose, manifests):
    expected = [["python", "manage.py", "migrate", "--noinput"], ["python", "manage.py", "sqs_setup"]]
    assert shell_steps(as_argv(compose["services"]["migrate"]["command"])) == expected
    assert shell_steps(only_container(manifests, "wipsie-migrate")["command"]) == expected
    assert (ROOT / "sqs_app" / "management" / "commands" / "sqs_setup.py").is_file()


# --- docker-compose.yml ---------------------------------------------------------------------


def test_compose_has_no_obsolete_version_key(compose):
    assert "version" not in compose


def test_compose_web_worker_beat_and_migrate_share_one_image_build_and_environment(compose):
    raw = (ROOT / "docker-compose.yml").read_text()
    assert re.search(r"^x-app: &app$", raw, re.MULTILINE)
    services = compose["services"]
    for name in APP_SERVICES:
        assert re.search(rf"^  {name}:\n    <<: \*app$", raw, re.MULTILINE), f"{name} does not use *app"
        for key in ("image", "build", "environment"):
            assert services[name][key] == compose["x-app"][key], f"{name}.{key} differs from x-app"
    assert compose["x-app"]["build"]["context"] == "."


def test_compose_services_run_gunicorn_celery_worker_and_celery_beat(compose):
    services = compose["services"]
    assert as_argv(services["web"]["command"]) == ["gunicorn", "wipsie_site.wsgi", "-c", "gunicorn.conf.py"]
    assert as_argv(services["worker"]["command"]) == ["celery", "-A", "wipsie_site", "worker", "-l", "INFO"]
    assert as_argv(services["beat"]["command"]) == ["celery", "-A", "wipsie_site", "beat", "-l", "INFO"]


def test_compose_web_worker_and_beat_wait_for_migrate_to_succeed(compose):
    services = compose["services"]
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    migrate = services["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["db"] == {"condition": "service_healthy"}
    assert "sqs" in migrate["depends_on"]


def test_compose_checks_web_health_on_health_and_no_one_else_inherits_that_check(compose):
    services = compose["services"]
    web_check = " ".join(as_argv(services["web"]["healthcheck"]["test"]))
    assert f":{API_PORT}/health" in web_check
    assert f"8000:{API_PORT}" in [str(port) for port in services["web"]["ports"]]
    # The image's HEALTHCHECK asks port 8000, where only web listens: the worker
    # and beat check their heartbeat file instead, the one-shot migrate nothing.
    assert services["migrate"]["healthcheck"] == {"disable": True}
    for name in ("worker", "beat"):
        assert as_argv(services[name]["healthcheck"]["test"]) == [
            "CMD", "python", "-m", "tasks_app.heartbeat", "--max-age", "60"
        ]  # fmt: skip


def test_compose_database_is_postgres_15_with_a_health_check_and_a_volume(compose):
    db = compose["services"]["db"]
    assert db["image"] == "postgres:15"
    assert "pg_isready" in " ".join(as_argv(db["healthcheck"]["test"]))
    volume = db["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]


def test_compose_database_url_matches_the_database_service(compose):
    db = compose["services"]["db"]["environment"]
    url = compose["x-app"]["environment"]["DATABASE_URL"]
    expected = f"postgres://{db['POSTGRES_USER']}:{db['POSTGRES_PASSWORD']}@db:5432/{db['POSTGRES_DB']}"
    assert url == expected


def test_compose_points_sqs_and_sns_at_the_local_emulator(compose):
    sqs = compose["services"]["sqs"]
    assert sqs["image"] == "motoserver/moto:5.2.5"
    assert any(str(port).endswith(":5000") for port in sqs["ports"])
    environment = compose["x-app"]["environment"]
    assert environment["AWS_ENDPOINT_URL_SQS"] == "http://sqs:5000"
    assert environment["AWS_ENDPOINT_URL_SNS"] == "http://sqs:5000"


def test_compose_app_environment_lets_the_settings_load(compose):
    environment = compose["x-app"]["environment"]
    # Without DEBUG the settings refuse the built-in key; here a key is always given.
    assert environment["SECRET_KEY"]
    for name in (
        "DATABASE_URL",
        "ALLOWED_HOSTS",
        "AWS_REGION",
        "SQS_QUEUE_PREFIX",
        "LOG_FORMAT",
        "EMAIL_URL",
    ):
        assert name in environment
    assert "localhost" in environment["ALLOWED_HOSTS"].split(",")  # the health check's Host


# --- Kubernetes --------------------------------------------------------------------------------


def test_every_manifest_is_namespace_less_and_well_formed(manifests):
    assert manifests
    for (kind, name), obj in manifests.items():
        assert obj["apiVersion"] and kind and name
        assert "namespace" not in obj["metadata"], f"{kind}/{name} pins a namespace"


def test_every_workload_selector_matches_its_pod_labels(manifests):
    deployments = [obj for (kind, _), obj in manifests.items() if kind == "Deployment"]
    assert len(deployments) == 5  # the API, a worker per family, beat
    for deployment in deployments:
        selector = deployment["spec"]["selector"]["matchLabels"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), deployment["metadata"]["name"]


def test_the_api_deployment_runs_three_gunicorn_pods_on_port_8000_as_the_spec_says(manifests):
    api = workloads(manifests)["wipsie-api"]
    assert api["spec"]["replicas"] == 3
    container = only_container(manifests, "wipsie-api")
    assert container["image"].split(":")[0] == API_IMAGE
    assert [port["containerPort"] for port in container["ports"]] == [API_PORT]
    assert container["resources"] == {
        "requests": {"cpu": "100m", "memory": "256Mi"},
        "limits": {"cpu": "500m", "memory": "512Mi"},
    }


def test_the_api_probes_ask_health_on_the_container_port_with_an_allowed_host(manifests):
    container = only_container(manifests, "wipsie-api")
    container_ports = {port["containerPort"] for port in container["ports"]}
    allowed_hosts = configmap(manifests)["data"]["ALLOWED_HOSTS"].split(",")
    # Liveness must not depend on SQS or the database: an outage would restart every pod.
    # Readiness depends on the database only: an SQS blip must not empty the Service.
    for probe_name, path in (("livenessProbe", "/health/live"), ("readinessProbe", "/health/ready")):
        probe = container[probe_name]["httpGet"]
        assert probe["path"] == path
        assert resolve_port(container, probe["port"]) in container_ports
        # The kubelet calls the pod's IP; Django answers 400 to a Host it does not allow.
        (host,) = [header["value"] for header in probe.get("httpHeaders", []) if header["name"] == "Host"]
        assert host in allowed_hosts


def test_the_api_port_setting_if_given_matches_the_container_port(manifests, compose):
    assert configmap(manifests)["data"].get("API_PORT", str(API_PORT)) == str(API_PORT)
    assert str(compose["x-app"]["environment"].get("API_PORT", API_PORT)) == str(API_PORT)


def test_the_service_selects_the_api_pods_and_targets_port_8000(manifests):
    service = manifests[("Service", "wipsie-api")]
    selector = service["spec"]["selector"]
    workloads_by_name = workloads(manifests)
    api_labels = workloads_by_name["wipsie-api"]["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= api_labels.items()
    for name in (*WORKER_DEPLOYMENTS, "wipsie-beat", "wipsie-migrate"):
        labels = workloads_by_name[name]["spec"]["template"]["metadata"]["labels"]
        assert not selector.items() <= labels.items(), f"the Service would also send traffic to {name}"
    container = only_container(manifests, "wipsie-api")
    for port in service["spec"]["ports"]:
        assert resolve_port(container, port["targetPort"]) == API_PORT


def test_each_worker_runs_celery_worker_and_listens_only_for_its_metrics(manifests):
    for name in WORKER_DEPLOYMENTS:
        container = only_container(manifests, name)
        assert container["command"][:4] == ["celery", "-A", "wipsie_site", "worker"]
        assert [port["name"] for port in container.get("ports", [])] == ["metrics"]
        # Celery's `inspect ping` goes unanswered on SQS (no fanout exchange for remote
        # control): any liveness probe must be something else.
        probe = container.get("livenessProbe")
        assert probe is None or "inspect" not in " ".join(probe.get("exec", {}).get("command", []))


def test_the_beat_deployment_is_a_single_pod_replaced_with_recreate(manifests):
    beat = workloads(manifests)["wipsie-beat"]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"]["type"] == "Recreate"
    assert only_container(manifests, "wipsie-beat")["command"][:4] == ["celery", "-A", "wipsie_site", "beat"]


def test_the_migrate_job_runs_once_without_restarting_in_place(manifests):
    (kind,) = [kind for kind, name in manifests if name == "wipsie-migrate"]
    assert kind == "Job"
    job = workloads(manifests)["wipsie-migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("Never", "OnFailure")
    assert job["spec"]["backoffLimit"] >= 1


def test_every_workload_runs_the_same_image_as_a_non_root_user(manifests):
    for name, workload in workloads(manifests).items():
        pod = workload["spec"]["template"]["spec"]
        for container in containers_of(workload):
            assert container["image"].split(":")[0] == API_IMAGE, name
            non_root = container.get("securityContext", {}).get(
                "runAsNonRoot", pod.get("securityContext", {}).get("runAsNonRoot")
            )
            assert non_root is True, f"{name}/{container['name']} may run as root"
            assert container.get("securityContext", {}).get("allowPrivilegeEscalation") is False


def test_every_workload_gets_the_configmap_and_the_same_secrets(manifests):
    def secret_refs(container):
        return {
            item["name"]: item["valueFrom"]["secretKeyRef"]
            for item in container.get("env", [])
            if "secretKeyRef" in item.get("valueFrom", {})
        }

    api_refs = secret_refs(only_container(manifests, "wipsie-api"))
    assert {"DATABASE_URL", "SECRET_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(api_refs)
    for name, workload in workloads(manifests).items():
        for container in containers_of(workload):
            assert {"configMapRef": {"name": "wipsie-config"}} in container.get("envFrom", []), name
            assert secret_refs(container) == api_refs, f"{name} gets different secrets from the API"


def test_every_secret_reference_names_a_key_in_the_example_secret(manifests):
    secrets = secret_example_keys()
    references = 0
    for name, workload in workloads(manifests).items():
        for container in containers_of(workload):
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    references += 1
                    assert ref["key"] in secrets.get(ref["name"], set()), f"{name}: {item['name']} -> {ref}"
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in secrets
    assert references


def test_every_configmap_reference_names_the_configmap(manifests):
    configmaps = {name for kind, name in manifests if kind == "ConfigMap"}
    for workload in workloads(manifests).values():
        for container in containers_of(workload):
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in configmaps


def test_the_configmap_holds_only_string_values_and_no_secrets(manifests):
    data = configmap(manifests)["data"]
    for key, value in data.items():
        assert isinstance(value, str), f"{key}: {value!r} must be quoted, ConfigMap values are strings"
    assert not SECRET_SETTINGS & set(data)
    assert data["DEBUG"] == "false"


def test_the_example_secret_holds_placeholders_and_says_where_real_secrets_come_from():
    raw = (K8S / "secret.example.yaml").read_text()
    assert "secret manager" in raw.lower()
    for document in load_yaml(K8S / "secret.example.yaml"):
        assert "data" not in document, "use stringData: placeholders must be readable"
        for key, value in document["stringData"].items():
            assert "CHANGE-ME" in value, f"{key} does not look like a placeholder"


def test_the_kustomization_applies_every_manifest_but_the_example_secret():
    kustomization_path = K8S / "kustomization.yaml"
    if not kustomization_path.exists():
        pytest.skip("no kustomization.yaml")
    (kustomization,) = load_yaml(kustomization_path)
    resources = set(kustomization["resources"])
    manifests_on_disk = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert "secret.example.yaml" not in resources
    assert resources == manifests_on_disk - {"secret.example.yaml"}
