#!/usr/bin/env python3
"""A small "managed cloud" OSB broker for chartbroker's upstream tests.

Built on openbrokerapi (PyPI), served by waitress, state kept in memory. It is
a real, independently written OSB implementation: chartbroker's client has to
speak the protocol the way openbrokerapi's Flask blueprint expects it.

    broker.py --port 0 --mode sync|async [--polls N] [--log FILE]
              [--user U --password P | --token T] [--retry-after S]

--mode async makes provision, update, deprovision, bind and unbind answer 202;
their last_operation reports "in progress" for N polls, then "succeeded".
Every request received is appended to --log as one JSON object per line
(method, decoded path and raw request URI, query, selected headers, JSON
body), so tests can assert what actually reached the upstream (e.g. orphan
mitigation DELETEs).

Test knobs, passed as provision parameters: {"outcome": "fail"} makes the
(async) provision end "failed"; in sync mode it raises a 500.

Prints "LISTENING <port>" on stdout once the socket is bound.
"""

import argparse
import json
import logging
import secrets
import sys
import threading
import time

from flask import Flask, request
from openbrokerapi import api, errors
from openbrokerapi.auth import BrokerAuthenticator
from openbrokerapi.catalog import Schemas, ServicePlan
from openbrokerapi.helper import to_json_response
from openbrokerapi.response import ErrorResponse
from openbrokerapi.service_broker import (
    Binding,
    BindState,
    DeprovisionServiceSpec,
    GetBindingSpec,
    GetInstanceDetailsSpec,
    LastOperation,
    OperationState,
    ProvisionedServiceSpec,
    ProvisionState,
    Service,
    ServiceBroker,
    UnbindSpec,
    UpdateServiceSpec,
)
import waitress

# Ids the repository's example catalog (catalog/mysql.yaml) maps its
# `premium` plan to, so this script can also stand in for "managed MySQL".
MYSQL_SERVICE = "5b6f2a0e-3c1d-4e8f-9a7b-1c2d3e4f5a60"
MYSQL_PREMIUM = "8e9d0c1b-2a3f-4b5c-8d7e-6f5a4b3c2d10"
MYSQL_BUSINESS = "9f0e1d2c-3b4a-4c5d-9e8f-7a6b5c4d3e20"


def _service(id, name, description, tags, plans, **flags):
    """A bindable service of this catalog (every one is)."""
    return Service(
        id=id, name=name, description=description, bindable=True, tags=tags, plans=plans, **flags
    )


def catalog():
    redis_create = {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "object",
        "properties": {"memory_mb": {"type": "integer", "minimum": 64}},
    }
    return [
        _service(
            MYSQL_SERVICE,
            "managed-mysql",
            "Managed MySQL from the cloud",
            ["mysql", "managed"],
            [
                ServicePlan(id=MYSQL_PREMIUM, name="premium", description="Premium managed MySQL"),
                ServicePlan(id=MYSQL_BUSINESS, name="business", description="Business managed MySQL"),
            ],
            plan_updateable=True,
            instances_retrievable=True,
            bindings_retrievable=True,
        ),
        _service(
            "upstream-redis",
            "managed-redis",
            "Managed Redis",
            ["redis", "cache"],
            [
                ServicePlan(
                    id="upstream-redis-small",
                    name="small",
                    description="Small managed Redis",
                    schemas=Schemas(service_instance={"create": {"parameters": redis_create}}),
                )
            ],
            bindings_retrievable=True,
        ),
        _service(
            "upstream-kafka",
            "managed-kafka",
            "Managed Kafka (experimental, apps only)",
            ["streaming", "experimental"],
            [ServicePlan(id="upstream-kafka-dev", name="dev", description="Dev Kafka")],
        ),
    ]


class Cloud(ServiceBroker):
    """In-memory instances and bindings with poll-counted async operations."""

    def __init__(self, mode, polls):
        self.mode = mode
        self.polls = polls
        self.lock = threading.Lock()
        self.instances = {}  # id -> dict(service_id, plan_id, parameters, op)
        self.bindings = {}  # (iid, bid) -> dict(details, credentials, op)
        self.ops = {}  # op id -> dict(left, result, kind, key)
        self.counter = 0

    def catalog(self):
        return catalog()

    def _op(self, kind, key, result="succeeded"):
        self.counter += 1
        op = f"{kind}-{self.counter}"
        self.ops[op] = {"left": self.polls, "result": result, "kind": kind, "key": key}
        return op

    def _step(self, op_id, key):
        """Advance an operation by one poll; returns (state, description)."""
        op = self.ops.get(op_id) if op_id else None
        if op is None:
            # Without an operation token: the newest one for this resource.
            for candidate in reversed(list(self.ops.values())):
                if candidate["key"] == key:
                    op = candidate
                    break
        if op is None:
            return OperationState.SUCCEEDED, "nothing in progress"
        if op["left"] > 0:
            op["left"] -= 1
            return OperationState.IN_PROGRESS, f"{op['kind']}: {op['left']} poll(s) to go"
        if op["result"] == "failed":
            return OperationState.FAILED, f"simulated {op['kind']} failure in the cloud"
        if op["kind"] == "deprovision":
            self.instances.pop(key, None)
        if op["kind"] == "unbind":
            self.bindings.pop(key, None)
        return OperationState.SUCCEEDED, f"{op['kind']} done"

    # === instances ===

    def provision(self, instance_id, details, async_allowed, **kwargs):
        with self.lock:
            params = details.parameters or {}
            fail = params.get("outcome") == "fail"
            existing = self.instances.get(instance_id)
            if existing is not None:
                same = (existing["service_id"], existing["plan_id"], existing["parameters"]) == (
                    details.service_id,
                    details.plan_id,
                    params,
                )
                if not same:
                    raise errors.ErrInstanceAlreadyExists()
                op = self.ops.get(existing["op"] or "")
                if op is not None and op["left"] > 0:
                    return ProvisionedServiceSpec(ProvisionState.IS_ASYNC, operation=existing["op"])
                return ProvisionedServiceSpec(ProvisionState.IDENTICAL_ALREADY_EXISTS)
            if self.mode == "async":
                if not async_allowed:
                    raise errors.ErrAsyncRequired()
                op = self._op("provision", instance_id, "failed" if fail else "succeeded")
                self.instances[instance_id] = {
                    "service_id": details.service_id,
                    "plan_id": details.plan_id,
                    "parameters": params,
                    "op": op,
                }
                return ProvisionedServiceSpec(
                    ProvisionState.IS_ASYNC,
                    dashboard_url=f"https://cloud.example/{instance_id}",
                    operation=op,
                )
            if fail:
                raise RuntimeError("simulated provision crash")
            self.instances[instance_id] = {
                "service_id": details.service_id,
                "plan_id": details.plan_id,
                "parameters": params,
                "op": None,
            }
            return ProvisionedServiceSpec(dashboard_url=f"https://cloud.example/{instance_id}")

    def update(self, instance_id, details, async_allowed, **kwargs):
        with self.lock:
            inst = self.instances.get(instance_id)
            if inst is None:
                raise errors.ErrBadRequest(f"no instance {instance_id}")
            if details.plan_id:
                inst["plan_id"] = details.plan_id
            inst["parameters"] = {**inst["parameters"], **(details.parameters or {})}
            if self.mode == "async":
                op = self._op("update", instance_id)
                inst["op"] = op
                return UpdateServiceSpec(True, operation=op)
            return UpdateServiceSpec(False)

    def deprovision(self, instance_id, details, async_allowed, **kwargs):
        with self.lock:
            if instance_id not in self.instances:
                raise errors.ErrInstanceDoesNotExist()
            if self.mode == "async":
                op = self._op("deprovision", instance_id)
                self.instances[instance_id]["op"] = op
                return DeprovisionServiceSpec(True, operation=op)
            del self.instances[instance_id]
            return DeprovisionServiceSpec(False)

    def last_operation(self, instance_id, operation_data, service_id, plan_id, **kwargs):
        with self.lock:
            # Gone (410) once deleted; the poll that completes a
            # deprovision still answers "succeeded".
            if instance_id not in self.instances:
                raise errors.ErrInstanceDoesNotExist()
            state, desc = self._step(operation_data, instance_id)
            return LastOperation(state, desc)

    def get_instance(self, instance_id, **kwargs):
        with self.lock:
            inst = self.instances.get(instance_id)
            if inst is None:
                raise errors.ErrInstanceDoesNotExist()
            return GetInstanceDetailsSpec(inst["service_id"], inst["plan_id"], parameters=inst["parameters"])

    # === bindings ===

    def bind(self, instance_id, binding_id, details, async_allowed, **kwargs):
        with self.lock:
            if instance_id not in self.instances:
                raise errors.ErrBadRequest(f"no instance {instance_id}")
            if details.service_id == "upstream-kafka":
                app = details.app_guid or (details.bind_resource.app_guid if details.bind_resource else None)
                if not app:
                    raise errors.ErrAppGuidNotProvided()
            key = (instance_id, binding_id)
            params = details.parameters or {}
            existing = self.bindings.get(key)
            if existing is not None:
                if existing["parameters"] != params:
                    raise errors.ErrBindingAlreadyExists()
                return Binding(BindState.IDENTICAL_ALREADY_EXISTS, credentials=existing["credentials"])
            creds = {
                "host": f"{instance_id}.db.cloud.example",
                "port": 3306,
                "username": f"u_{binding_id}"[:32],
                "password": secrets.token_urlsafe(18),
            }
            creds["uri"] = f"mysql://{creds['username']}:{creds['password']}@{creds['host']}:3306/app"
            self.bindings[key] = {"parameters": params, "credentials": creds, "op": None}
            if self.mode == "async":
                op = self._op("bind", key)
                self.bindings[key]["op"] = op
                return Binding(BindState.IS_ASYNC, operation=op)
            return Binding(credentials=creds)

    def unbind(self, instance_id, binding_id, details, async_allowed, **kwargs):
        with self.lock:
            key = (instance_id, binding_id)
            if key not in self.bindings:
                raise errors.ErrBindingDoesNotExist()
            if self.mode == "async":
                op = self._op("unbind", key)
                return UnbindSpec(True, operation=op)
            del self.bindings[key]
            return UnbindSpec(False)

    def last_binding_operation(self, instance_id, binding_id, operation_data, service_id, plan_id, **kwargs):
        with self.lock:
            state, desc = self._step(operation_data, (instance_id, binding_id))
            return LastOperation(state, desc)

    def get_binding(self, instance_id, binding_id, **kwargs):
        with self.lock:
            b = self.bindings.get((instance_id, binding_id))
            if b is None:
                raise errors.ErrBindingDoesNotExist()
            return GetBindingSpec(credentials=b["credentials"], parameters=b["parameters"])


class BearerAuthenticator(BrokerAuthenticator):
    def __init__(self, token):
        self.token = token

    def authenticate(self):
        if request.headers.get("Authorization", "") == f"Bearer {self.token}":
            return None
        return to_json_response(ErrorResponse(description="bad token")), 401


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--mode", choices=["sync", "async"], default="sync")
    p.add_argument("--polls", type=int, default=2)
    p.add_argument("--log", default=None)
    p.add_argument("--user", default="cloud-user")
    p.add_argument("--password", default="cloud-password")
    p.add_argument("--token", default=None)
    p.add_argument("--retry-after", type=int, default=None)
    a = p.parse_args()

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logger = logging.getLogger("cloud")
    broker = Cloud(a.mode, a.polls)
    log_lock = threading.Lock()

    app = Flask("cloud")

    @app.before_request
    def record():
        if not a.log:
            return None
        body = request.get_json(silent=True)
        auth = request.authorization
        entry = {
            "time": time.time(),
            "method": request.method,
            "path": request.path,
            # As it arrived, before the WSGI server decoded it (waitress).
            "raw_uri": request.environ.get("REQUEST_URI"),
            "query": request.args.to_dict(),
            "api_version": request.headers.get("X-Broker-API-Version"),
            "originating_identity": request.headers.get("X-Broker-API-Originating-Identity"),
            "request_identity": request.headers.get("X-Broker-API-Request-Identity"),
            "auth_user": auth.username if auth is not None else None,
            "bearer": request.headers.get("Authorization", "").startswith("Bearer "),
            "body": body,
        }
        with log_lock, open(a.log, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
        return None

    if a.retry_after is not None:

        @app.after_request
        def retry_after(resp):
            if request.path.endswith("/last_operation"):
                resp.headers["Retry-After"] = str(a.retry_after)
            return resp

    if a.token:
        blueprint = api.get_blueprint(broker, None, logger, authenticator=BearerAuthenticator(a.token))
    else:
        blueprint = api.get_blueprint(broker, api.BrokerCredentials(a.user, a.password), logger)
    app.register_blueprint(blueprint)

    server = waitress.create_server(app, host="127.0.0.1", port=a.port, threads=8)
    print(f"LISTENING {server.effective_port}", flush=True)
    server.run()


if __name__ == "__main__":
    main()
