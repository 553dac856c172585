"""The API server's validation of the objects the test server accepts: 422 Invalid like the real
one, for names, labels, annotations, the Job's pod template and dockerconfigjson Secrets."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from tinklet_kube_testing.store import StatusError

JSON = dict[str, Any]
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
DNS_LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
LABEL_VALUE_MESSAGE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
    "must start and end with an alphanumeric character"
)


class Problems:
    """The field errors found so far, raised together as one 422."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, str]] = []

    def add(self, field: str, value: object, message: str) -> None:
        """Note that ``field`` holds the invalid ``value``."""
        self.items.append((field, json.dumps(value) if not isinstance(value, str) else f'"{value}"', message))

    def raise_if_any(self, kind: str, name: str) -> None:
        """Raise the 422 ``Invalid`` Status if anything was noted."""
        if not self.items:
            return
        texts = [f"{field}: Invalid value: {value}: {message}" for field, value, message in self.items]
        joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
        causes = [
            {"reason": "FieldValueInvalid", "message": f"Invalid value: {value}: {message}", "field": field}
            for field, value, message in self.items
        ]
        kind_name, _, group = kind.partition(".")
        raise StatusError(
            422,
            "Invalid",
            f'{kind} "{name}" is invalid: {joined}',
            {"name": name, "group": group, "kind": kind_name, "causes": causes},
        )


def check_dns_label(problems: Problems, field: str, value: str) -> None:
    """A name that must be a DNS-1123 label (at most 63 characters)."""
    if len(value) > 63:
        problems.add(field, value, "must be no more than 63 characters")
    elif not _DNS_LABEL.match(value):
        problems.add(field, value, DNS_LABEL_MESSAGE)


def check_metadata(problems: Problems, metadata: JSON, *, label_name: bool) -> None:
    """The name (a DNS label, or subdomain), labels and annotation keys of an object."""
    name = str(metadata.get("name") or "")
    if not name:
        problems.add("metadata.name", name, "name or generateName is required")
    elif label_name:
        check_dns_label(problems, "metadata.name", name)
    elif len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        problems.add(
            "metadata.name",
            name,
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'",
        )
    for key, value in (metadata.get("labels") or {}).items():
        _check_key(problems, f"metadata.labels: {key}", key)
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            problems.add(f"metadata.labels: {key}", value, LABEL_VALUE_MESSAGE)
    for key in metadata.get("annotations") or {}:
        _check_key(problems, f"metadata.annotations: {key}", key)


def _check_key(problems: Problems, field: str, key: str) -> None:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        problems.add(field, key, "prefix part must be a lowercase RFC 1123 subdomain")
    if not name or len(name) > 63 or not _QUALIFIED.match(name):
        problems.add(field, key, "name part must consist of alphanumeric characters, '-', '_' or '.'")


def validate_job(job: JSON) -> None:
    """A batch/v1 Job as the test server runs it; raise 422 with every problem found."""
    problems = Problems()
    metadata = job.get("metadata") or {}
    check_metadata(problems, metadata, label_name=True)
    spec = job.get("spec") or {}
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and (not isinstance(deadline, int) or deadline <= 0):
        problems.add("spec.activeDeadlineSeconds", deadline, "must be greater than 0")
    backoff = spec.get("backoffLimit")
    if backoff is not None and (not isinstance(backoff, int) or backoff < 0):
        problems.add("spec.backoffLimit", backoff, "must be greater than or equal to 0")
    template = spec.get("template") or {}
    template_meta = dict(template.get("metadata") or {}, name="template")
    check_metadata(problems, template_meta, label_name=True)
    _check_pod_spec(problems, template.get("spec") or {}, "spec.template.spec")
    problems.raise_if_any("Job.batch", str(metadata.get("name") or ""))


def _check_pod_spec(problems: Problems, spec: JSON, where: str) -> None:
    restart = spec.get("restartPolicy")
    if restart not in ("Never", "OnFailure"):
        problems.add(f"{where}.restartPolicy", restart, 'supported values: "OnFailure", "Never"')
    volumes = set()
    for index, volume in enumerate(spec.get("volumes") or ()):
        name = str(volume.get("name") or "")
        check_dns_label(problems, f"{where}.volumes[{index}].name", name)
        if name in volumes:
            problems.add(f"{where}.volumes[{index}].name", name, "Duplicate value")
        volumes.add(name)
        if "hostPath" in volume and not str(volume["hostPath"].get("path") or "").startswith("/"):
            problems.add(
                f"{where}.volumes[{index}].hostPath.path", volume["hostPath"].get("path"), "must be absolute"
            )
    containers = spec.get("containers") or []
    if not containers:
        problems.add(f"{where}.containers", containers, "must have at least one container")
    names: set[str] = set()
    inits = [
        (f"{where}.initContainers[{index}]", c) for index, c in enumerate(spec.get("initContainers") or ())
    ]
    for at, init in inits:
        restart = init.get("restartPolicy")
        if restart is not None and restart != "Always":
            problems.add(f"{at}.restartPolicy", restart, 'supported values: "Always"')
    regular = [(f"{where}.containers[{index}]", c) for index, c in enumerate(containers)]
    for at, container in inits + regular:
        name = str(container.get("name") or "")
        if name in names:
            problems.add(f"{at}.name", name, "Duplicate value")
        names.add(name)
        check_dns_label(problems, f"{at}.name", str(container.get("name") or ""))
        if not str(container.get("image") or "").strip():
            problems.add(f"{at}.image", container.get("image"), "Required value")
        for env_index, env in enumerate(container.get("env") or ()):
            if not _ENV_NAME.match(str(env.get("name") or "")):
                problems.add(
                    f"{at}.env[{env_index}].name",
                    env.get("name"),
                    "a valid environment variable name "
                    "must consist of alphabetic characters, digits, '_', '-', or '.', and must not "
                    "start with a digit",
                )
        for mount_index, mount in enumerate(container.get("volumeMounts") or ()):
            if mount.get("name") not in volumes:
                problems.add(f"{at}.volumeMounts[{mount_index}].name", mount.get("name"), "Not found")


def drop_sidecar_fields(job: JSON) -> None:
    """Drop ``restartPolicy`` from a Job's init containers, as a server without native sidecars
    (before 1.29, or the feature gate off) drops the field it does not know."""
    template_spec = ((job.get("spec") or {}).get("template") or {}).get("spec") or {}
    for init in template_spec.get("initContainers") or ():
        init.pop("restartPolicy", None)


def validate_secret(secret: JSON) -> None:
    """A Secret: metadata, base64 data, and a parseable ``.dockerconfigjson`` for that type.
    Values are never quoted back (a real server says ``<secret contents redacted>``)."""
    problems = Problems()
    metadata = secret.get("metadata") or {}
    check_metadata(problems, metadata, label_name=False)
    data = secret.get("data") or {}
    decoded = {}
    for key, value in data.items():
        try:
            decoded[key] = base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            problems.add(f"data[{key}]", "<secret contents redacted>", "illegal base64 data")
    if secret.get("type") == "kubernetes.io/dockerconfigjson":
        document = decoded.get(".dockerconfigjson")
        if document is None:
            problems.add("data[.dockerconfigjson]", "<secret contents redacted>", "Required value")
        else:
            try:
                parsed = json.loads(document)
                if not isinstance(parsed, dict):
                    raise ValueError("not an object")
            except ValueError:
                problems.add("data[.dockerconfigjson]", "<secret contents redacted>", "invalid JSON")
    problems.raise_if_any("Secret", str(metadata.get("name") or ""))
