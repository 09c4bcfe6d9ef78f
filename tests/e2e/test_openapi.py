"""`GET /v1/openapi.json`: an OpenAPI 3.1 document that openapi-spec-validator accepts, that
lists every route the server answers (and the server answers every route it lists), and whose
schemas the live answers satisfy (answers are closed objects, so a field added to the API and
not to the document fails here)."""

import json
import threading
import urllib.error
import urllib.request

import pytest

from conftest import wait_until

validator = pytest.importorskip("openapi_spec_validator", reason="pip install openapi-spec-validator (CI installs it)")
jsonschema = pytest.importorskip("jsonschema")

METHODS = ("get", "post", "put", "delete", "patch")


def call(agent, method, path, body=None, accept="application/json", read_line=False):
    data = json.dumps(body).encode() if body is not None else (b"" if method == "post" else None)
    request = urllib.request.Request(f"http://{agent.api}{path}", data=data, method=method.upper())
    request.add_header("Accept", accept)
    if body is not None or method != "get":
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.readline() if read_line else response.read()
            return response.status, response.headers.get("Content-Type", ""), raw
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


def schema_validator(document, schema):
    root = dict(schema)
    root["components"] = document["components"]
    root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return jsonschema.Draft202012Validator(root)


def fetch_document(agent):
    status, content_type, raw = call(agent, "get", "/v1/openapi.json")
    assert status == 200 and content_type.startswith("application/json")
    return json.loads(raw)


def test_the_document_is_valid_openapi_3_1(swarm):
    document = fetch_document(swarm.agent("oa1"))
    assert document["openapi"].startswith("3.1")
    validator.validate(document)


def test_every_documented_route_answers_as_documented(swarm):
    a = swarm.agent("oa-a")
    b = swarm.agent("oa-b", join=[a.address])
    wait_until(lambda: len(a.members()) == 2, 10, "two members")
    document = fetch_document(a)
    call(a, "post", "/v1/kv/put", {"key": "seed", "value": "v", "ttlSeconds": 600})
    bodies = {
        "/v1/join": {"addresses": [b.address]},
        "/v1/kv/put": {"key": "k", "value": "v", "wait": "all", "timeoutSeconds": 5},
        "/v1/kv/batch": {"entries": [{"key": "b1", "value": "1"}, {"key": "seed", "value": None}]},
        "/v1/kv/delete": {"key": "k"},
        "/v1/keys": {"operation": "install", "key": "AAAAAAAAAAAAAAAAAAAAAA=="},
        "/v1/event": {"name": "deploy", "payload": "v1", "coalesce": True},
        "/v1/tags": {"set": {"role": "web"}, "delete": ["zone"]},
    }
    queries = {"/v1/kv/get": "?key=seed2", "/v1/kv/list": "?prefix=", "/v1/kv/watch": "?from=0"}
    call(a, "post", "/v1/kv/put", {"key": "seed2", "value": "v"})
    answered = []
    # leave last: it ends this node's membership.
    operations = [(path, method, op) for path, item in document["paths"].items() for method, op in item.items()]
    operations.sort(key=lambda entry: entry[0] == "/v1/leave")
    for path, method, operation in operations:
        stream = path in ("/v1/kv/watch", "/v1/events", "/v1/monitor")
        if path == "/v1/events":
            # The stream carries events from now on: send one once it is open.
            threading.Timer(0.5, lambda: call(a, "post", "/v1/event", {"name": "ping"})).start()
        if path == "/v1/monitor":
            # A tags change logs a line.
            threading.Timer(0.5, lambda: call(a, "post", "/v1/tags", {"set": {"monitored": "yes"}})).start()
        status, content_type, raw = call(a, method, path + queries.get(path, ""), bodies.get(path) if method == "post" else None,
                                         read_line=stream)
        assert status not in (404, 405), f"{method.upper()} {path} is documented but answers {status}"
        responses = operation["responses"]
        if status == 200:
            media = content_type.split(";")[0]
            content = responses["200"]["content"]
            documented = [m for m in content if m.split(";")[0] == media]
            assert documented, f"{method.upper()} {path} answered {media}, documented {list(content)}"
            if media in ("application/json", "application/x-ndjson"):
                schema = content[documented[0]]["schema"]
                if path != "/v1/openapi.json":
                    errors = list(schema_validator(document, schema).iter_errors(json.loads(raw)))
                    assert not errors, f"{method.upper()} {path}: {errors[0].message} at {list(errors[0].absolute_path)}"
        else:
            # The documented failure: the error envelope (encryption is off here, so keys fail).
            schema = responses["default"]["content"]["application/json"]["schema"]
            errors = list(schema_validator(document, schema).iter_errors(json.loads(raw)))
            assert not errors, f"{method.upper()} {path} ({status}): {errors[0].message}"
        answered.append(f"{method.upper()} {path} {status}")
    print("\n".join(answered))
    assert len(answered) == sum(len(item) for item in document["paths"].values())


def test_the_server_answers_nothing_the_document_does_not_list(swarm):
    a = swarm.agent("oa-undocumented")
    document = fetch_document(a)
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                continue
            status, _, _ = call(a, method, path, {} if method != "get" else None)
            assert status in (404, 405), f"{method.upper()} {path} answers {status} but is not documented"
    for path in ("/v1", "/v1/kv", "/v1/kv/put/extra", "/v2/members", "/index.html", "/v1/openapi.yaml"):
        status, _, raw = call(a, "get", path)
        assert status == 404, (path, status)
        assert json.loads(raw)["code"] == "not_found"
