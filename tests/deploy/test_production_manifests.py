"""k8s/ for production: autoscaling, disruption budgets, egress, IAM, probes, images, the database budget.

Each manifest is checked against the code it runs: the queue names, the
metric port, the health routes, the heartbeat module, the requirements.
Core objects are validated against Kubernetes' own schemas (kubernetes-validate, strict).
"""

import importlib.util
import json
import re
from pathlib import Path

import kubernetes_validate
import pytest
from django.conf import settings
from django.urls import resolve

from sqs_app.queues import LOGICAL_QUEUES, celery_queue_spec, queue_spec

from .test_deployment_files import K8S, ROOT, WORKER_DEPLOYMENTS, load_yaml, only_container, workloads

FAMILIES = {"data_polling", "task_processing", "notifications"}
HEARTBEAT = ["python", "-m", "tasks_app.heartbeat", "--max-age", "60"]
MAX_CONNECTIONS = 100 - 3  # PostgreSQL's default, less superuser_reserved_connections


@pytest.fixture(scope="module")
def manifests() -> dict[tuple[str, str], dict]:
    objects = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            for document in load_yaml(path):
                objects[(document["kind"], document["metadata"]["name"])] = document
    return objects


def of_kind(manifests, kind: str) -> dict[str, dict]:
    return {name: obj for (k, name), obj in manifests.items() if k == kind}


def configmap(manifests) -> dict:
    return manifests[("ConfigMap", "wipsie-config")]["data"]


def pod_labels(workload: dict) -> dict:
    return workload["spec"]["template"]["metadata"]["labels"]


def command_queues(container: dict) -> list[str]:
    command = container["command"]
    return command[command.index("-Q") + 1].split(",")


# --- Schemas -------------------------------------------------------------------------------------


def test_every_core_object_passes_kubernetes_validate_strict(manifests):
    version = kubernetes_validate.latest_version()
    validated = 0
    for obj in manifests.values():
        if obj["apiVersion"].startswith("keda.sh/"):
            continue  # a CRD: checked field by field below
        kubernetes_validate.validate(obj, version, strict=True)
        validated += 1
    assert validated >= 14


# --- The API ---------------------------------------------------------------------------------------


def test_the_api_autoscales_on_cpu_from_its_spec_replicas(manifests):
    (hpa,) = of_kind(manifests, "HorizontalPodAutoscaler").values()
    api = workloads(manifests)["wipsie-api"]

    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "wipsie-api",
    }
    assert hpa["spec"]["minReplicas"] == api["spec"]["replicas"] == 3
    assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"


def test_the_api_probes_are_routes_of_the_app_and_readiness_does_not_ask_sqs(manifests):
    from sqs_app import health

    container = only_container(manifests, "wipsie-api")
    live = container["livenessProbe"]["httpGet"]["path"]
    ready = container["readinessProbe"]["httpGet"]["path"]

    assert resolve(live).url_name == "health-live"
    assert resolve(ready).url_name == "health-ready"
    assert set(health.READINESS_CHECKS) == {"database"}


def test_the_ingress_routes_the_allowed_host_to_the_api_service(manifests):
    (ingress,) = of_kind(manifests, "Ingress").values()
    service = manifests[("Service", "wipsie-api")]
    [rule] = ingress["spec"]["rules"]

    assert rule["host"] in configmap(manifests)["ALLOWED_HOSTS"].split(",")
    assert rule["host"] in ingress["spec"]["tls"][0]["hosts"]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] in {port["name"] for port in service["spec"]["ports"]}
    # Behind the controller, the throttles count the address it saw (sqs_app.throttling).
    assert configmap(manifests)["NUM_PROXIES"] == "1"


# --- Workers and beat ---------------------------------------------------------------------------


def test_each_family_has_its_own_worker_consuming_only_its_queue(manifests):
    consumed = {}
    for name in WORKER_DEPLOYMENTS:
        container = only_container(manifests, name)
        family = pod_labels(workloads(manifests)[name])["wipsie.io/family"]
        queues = command_queues(container)
        assert queues[0] == family
        for queue in queues:
            assert queue in LOGICAL_QUEUES or queue == celery_queue_spec().logical_name
            consumed.setdefault(queue, []).append(name)
    assert set(consumed) == FAMILIES | {"celery"}
    # Each queue, Wipsie's own task queue included, has exactly one family of workers.
    assert all(len(names) == 1 for names in consumed.values())


def test_each_family_scales_with_keda_on_its_own_queues_depth(manifests):
    scaled = of_kind(manifests, "ScaledObject")
    authentications = of_kind(manifests, "TriggerAuthentication")
    data = configmap(manifests)
    assert set(scaled) == set(WORKER_DEPLOYMENTS)
    for name, scaled_object in scaled.items():
        assert scaled_object["spec"]["scaleTargetRef"]["name"] == name
        queues = command_queues(only_container(manifests, name))
        base = f"https://sqs.{data['AWS_REGION']}.amazonaws.com/{data['SQS_ACCOUNT_ID']}"
        expected_urls = {f"{base}/{physical_name(q, data)}" for q in queues}
        triggers = scaled_object["spec"]["triggers"]
        assert {t["metadata"]["queueURL"] for t in triggers} == expected_urls
        for trigger in triggers:
            assert trigger["type"] == "aws-sqs-queue"
            assert trigger["metadata"]["awsRegion"] == data["AWS_REGION"]
            assert int(trigger["metadata"]["queueLength"]) > 0
            assert trigger["authenticationRef"]["name"] in authentications
        assert 1 <= scaled_object["spec"]["minReplicaCount"] <= scaled_object["spec"]["maxReplicaCount"]
    (auth,) = authentications.values()
    assert auth["spec"]["podIdentity"]["provider"] == "aws"


def physical_name(logical: str, data: dict) -> str:
    """The queue name the code derives, under the ConfigMap's prefix."""
    spec = celery_queue_spec() if logical == "celery" else queue_spec(logical)
    assert spec.physical_name.startswith(settings.SQS_QUEUE_PREFIX)
    return data["SQS_QUEUE_PREFIX"] + spec.physical_name.removeprefix(settings.SQS_QUEUE_PREFIX)


def test_nothing_scales_beat_which_stays_a_single_pod(manifests):
    targets = {o["spec"]["scaleTargetRef"]["name"] for o in of_kind(manifests, "ScaledObject").values()}
    targets |= {
        o["spec"]["scaleTargetRef"]["name"] for o in of_kind(manifests, "HorizontalPodAutoscaler").values()
    }
    beat = workloads(manifests)["wipsie-beat"]

    assert "wipsie-beat" not in targets
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"]["type"] == "Recreate"


def test_workers_and_beat_are_checked_by_their_heartbeat_as_in_compose(manifests):
    for name in (*WORKER_DEPLOYMENTS, "wipsie-beat"):
        probe = only_container(manifests, name)["livenessProbe"]
        assert probe["exec"]["command"] == HEARTBEAT, name
        # A heartbeat a minute old fails; the probe must not ask more often than that makes sense.
        assert probe["periodSeconds"] * probe["failureThreshold"] >= 60
    from .test_deployment_files import as_argv

    (compose,) = load_yaml(ROOT / "docker-compose.yml")
    for name in ("worker", "beat"):
        assert as_argv(compose["services"][name]["healthcheck"]["test"])[1:] == HEARTBEAT


def test_the_probes_read_the_heartbeat_file_the_processes_touch_on_a_writable_volume(manifests):
    from django.conf import settings

    from tasks_app.heartbeat import DEFAULT_HEARTBEAT_FILE

    # Beat's scheduler touches the file on every tick (the workers' transport on every poll).
    assert settings.CELERY_BEAT_SCHEDULER == "tasks_app.scheduler:HeartbeatScheduler"
    for name in (*WORKER_DEPLOYMENTS, "wipsie-beat"):
        container = only_container(manifests, name)
        # The probe runs in the container with its environment: no --file, the same variable.
        assert "--file" not in container["livenessProbe"]["exec"]["command"]
        env = {item["name"]: item.get("value") for item in container["env"]}
        path = env.get("WIPSIE_HEARTBEAT_FILE") or configmap(manifests).get(
            "WIPSIE_HEARTBEAT_FILE", DEFAULT_HEARTBEAT_FILE
        )
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        mounts = [mount["mountPath"].rstrip("/") + "/" for mount in container["volumeMounts"]]
        assert any(path.startswith(mount) for mount in mounts), f"{name}: {path} is not on a volume"


def test_the_heartbeat_module_the_probes_run_exists():
    if importlib.util.find_spec("tasks_app.heartbeat") is None:
        pytest.skip("tasks_app.heartbeat lands with the worker redesign (the lead's)")
    source = Path(importlib.util.find_spec("tasks_app.heartbeat").origin).read_text()
    assert "--max-age" in source


def test_worker_metrics_are_served_on_the_port_the_pods_declare_and_prometheus_scrapes(manifests):
    for name in WORKER_DEPLOYMENTS:
        workload = workloads(manifests)[name]
        container = only_container(manifests, name)
        env = {item["name"]: item.get("value") for item in container["env"]}
        [port] = container["ports"]
        assert env["WORKER_METRICS_PORT"] == str(port["containerPort"])
        assert (
            workload["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"]
            == env["WORKER_METRICS_PORT"]
        )
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert env["PROMETHEUS_MULTIPROC_DIR"] in mounts


def test_the_api_shares_metrics_across_its_processes_and_lets_prometheus_in(manifests):
    import ipaddress

    container = only_container(manifests, "wipsie-api")
    env = {item["name"]: item.get("value") for item in container["env"]}
    annotations = workloads(manifests)["wipsie-api"]["spec"]["template"]["metadata"]["annotations"]

    assert env["PROMETHEUS_MULTIPROC_DIR"] in {m["mountPath"] for m in container["volumeMounts"]}
    assert annotations["prometheus.io/path"] == "/metrics" and resolve("/metrics").url_name == "metrics"
    assert annotations["prometheus.io/port"] == str(container["ports"][0]["containerPort"])
    for network in configmap(manifests)["METRICS_ALLOWED_IPS"].split(","):
        ipaddress.ip_network(network)


# --- Safety ---------------------------------------------------------------------------------------


def test_disruption_budgets_cover_the_api_and_the_workers(manifests):
    budgets = of_kind(manifests, "PodDisruptionBudget")
    api_budget = budgets["wipsie-api"]["spec"]
    worker_budget = budgets["wipsie-workers"]["spec"]
    hpa = manifests[("HorizontalPodAutoscaler", "wipsie-api")]

    assert (
        api_budget["selector"]["matchLabels"].items()
        <= pod_labels(workloads(manifests)["wipsie-api"]).items()
    )
    assert api_budget["minAvailable"] < hpa["spec"]["minReplicas"]  # a drain can still proceed
    for name in WORKER_DEPLOYMENTS:
        assert (
            worker_budget["selector"]["matchLabels"].items() <= pod_labels(workloads(manifests)[name]).items()
        )


def test_the_network_policy_blocks_the_metadata_address_for_every_pod(manifests):
    (policy,) = of_kind(manifests, "NetworkPolicy").values()
    selector = policy["spec"]["podSelector"]["matchLabels"]

    assert policy["spec"]["policyTypes"] == ["Egress"]
    for workload in workloads(manifests).values():
        assert selector.items() <= pod_labels(workload).items()
    blocks = [peer["ipBlock"] for rule in policy["spec"]["egress"] for peer in rule["to"]]
    assert {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]} in blocks
    assert all(
        "169.254.169.254/32" in block.get("except", []) for block in blocks if block["cidr"] == "0.0.0.0/0"
    )


def test_every_workload_runs_as_the_iam_annotated_service_account(manifests):
    account = manifests[("ServiceAccount", "wipsie")]

    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    for name, workload in workloads(manifests).items():
        assert workload["spec"]["template"]["spec"]["serviceAccountName"] == "wipsie", name


def test_the_iam_policy_allows_only_sqs_actions_on_wipsies_queues_and_sns_publish(manifests):
    policy = json.loads((K8S / "iam-policy.example.json").read_text())
    data = configmap(manifests)
    actions = {action for statement in policy["Statement"] for action in statement["Action"]}
    sqs_resources = {s["Resource"] for s in policy["Statement"] if s["Action"][0].startswith("sqs:")}

    assert "sqs:ListQueues" not in actions and "sqs:*" not in actions
    assert actions == {
        "sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
        "sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:PurgeQueue", "sqs:CreateQueue",
        "sqs:SetQueueAttributes", "sns:Publish",
    }  # fmt: skip
    assert sqs_resources == {
        f"arn:aws:sqs:{data['AWS_REGION']}:{data['SQS_ACCOUNT_ID']}:{data['SQS_QUEUE_PREFIX']}*"
    }


def test_images_are_pinned_to_one_version_never_latest(manifests):
    (kustomization,) = load_yaml(K8S / "kustomization.yaml")
    [image] = kustomization["images"]
    tags = set()
    for workload in workloads(manifests).values():
        for container in workload["spec"]["template"]["spec"]["containers"]:
            _, _, tag = container["image"].partition(":")
            tags.add(tag)
    assert tags == {image["newTag"]}
    assert re.fullmatch(r"\d+\.\d+\.\d+", image["newTag"])
    for path in K8S.glob("*.yaml"):
        code = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
        assert not any("latest" in line for line in code), path.name


def test_history_is_pruned_nightly_one_run_at_a_time(manifests):
    from .test_deployment_files import management_command_exists

    cronjob = manifests[("CronJob", "wipsie-history-prune")]
    command = only_container(manifests, "wipsie-history-prune")["command"]

    assert command[:3] == ["python", "manage.py", "history_prune"]
    assert management_command_exists("history_prune")
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert "HISTORY_RETENTION_DAYS" in configmap(manifests)


# --- Budgets and dependencies ---------------------------------------------------------------------


def test_the_database_connection_budget_fits_postgresqls_100(manifests):
    data = configmap(manifests)
    hpa = manifests[("HorizontalPodAutoscaler", "wipsie-api")]
    per_api_process = int(data["DATABASE_POOL_SIZE"]) + int(data["DATABASE_MAX_OVERFLOW"])
    api = hpa["spec"]["maxReplicas"] * int(data["WEB_CONCURRENCY"]) * per_api_process
    workers = 0
    for name, scaled_object in of_kind(manifests, "ScaledObject").items():
        command = only_container(manifests, name)["command"]
        concurrency = int(command[command.index("--concurrency") + 1])
        workers += scaled_object["spec"]["maxReplicaCount"] * (
            concurrency + 1
        )  # the pool and the main process
    beat_and_a_job = 2

    assert api + workers + beat_and_a_job <= MAX_CONNECTIONS
    assert f"= {api + workers + beat_and_a_job} of {MAX_CONNECTIONS}" in (K8S / "configmap.yaml").read_text()


def test_the_dockerfile_installs_the_requirements_under_the_lock():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"pip install -r /tmp/requirements\.txt -c /tmp/requirements\.lock", dockerfile)
    assert "COPY requirements.txt requirements.lock /tmp/" in dockerfile


def test_the_lock_pins_every_requirement_at_its_version_and_only_exact_pins():
    lock = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep, f"not an exact pin: {line}"
            lock[_normalise(name)] = version
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            requirement, _, version = line.partition("==")
            name = _normalise(requirement.split("[")[0])
            assert lock.get(name) == version, f"{name}: requirements.txt {version}, lock {lock.get(name)}"
    assert len(lock) > 40  # the transitive ones too (botocore, vine, psycopg-pool, ...)
    assert "moto" not in lock and "pytest" not in lock


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
