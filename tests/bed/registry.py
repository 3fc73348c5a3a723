# Test bed: a minimal, in-memory stand-in for Confluent Schema Registry's REST API (Python stdlib only); run by registry.sh.
"""
Why it exists: Confluent Schema Registry is not published to Maven Central or PyPI (the only registries this
machine and CI reach), so the test bed cannot run the real thing. This server speaks the subset of its REST
API that a producer/consumer (serializer/deserializer) uses, with Confluent's status codes and error bodies.

Everything is kept in memory; nothing persists across restarts. There is no compatibility checking (every
new schema is accepted, as with compatibility NONE), no deletes, no modes/contexts, no auth.

Responses use Content-Type application/vnd.schemaregistry.v1+json. Errors are
{"error_code": <int>, "message": <str>} with the HTTP status shown. Request bodies may be sent with any
content type (Confluent's, application/json, ...) and with Content-Length or chunked encoding.

Implemented endpoints:
  GET  /                                         -> {}  (health check, as Confluent answers)
  POST /subjects/{subject}/versions              body {"schema": "<string>", "schemaType"?: "AVRO"|"JSON"|"PROTOBUF",
                                                 "references"?: [...]} -> 200 {"id": N}
        Ids are global across subjects and start at 1. The same schema (same type and references, and the same
        text after JSON normalisation: parse, then dump with sorted keys and no spaces; PROTOBUF text is
        compared after trimming) gets the same id in every subject; registering it again under a subject that
        already has it returns the existing id and adds no version.
  POST /subjects/{subject}                       (lookup) same body -> 200 {"subject","id","version","schema"}
                                                 404/40401 subject not found, 404/40403 schema not found
  GET  /schemas/ids/{id}                         -> 200 {"schema": "..."}; 404/40403 schema not found
  GET  /schemas/ids/{id}/versions                -> 200 [{"subject","version"}, ...]; 404/40403
  GET  /subjects                                 -> 200 ["subject", ...] (sorted)
  GET  /subjects/{subject}/versions              -> 200 [1, 2, ...]; 404/40401
  GET  /subjects/{subject}/versions/{version}    version = N | latest | -1
                                                 -> 200 {"subject","id","version","schema"};
                                                 404/40401 subject, 404/40402 version, 422/42202 bad version
  GET  /subjects/{subject}/versions/{version}/schema -> 200 the schema text itself (raw)
Responses for non-AVRO schemas also carry "schemaType"; schemas with references also carry "references".
The "schema" returned is the text as first registered (Confluent returns its own canonical form).

Errors on registration/lookup bodies:
  request body not JSON / not an object  -> 400 {"error_code": 400}            (Jackson parse error in Confluent)
  "schema" missing or not a string, schema text not valid JSON for AVRO/JSON, not a valid-looking Avro
  schema (must be a string, an object with "type", or a union array), unknown schemaType
                                         -> 422 {"error_code": 42201, "message": "Invalid schema ..."}
Unknown path -> 404/404; known path with another method -> 405/405.
"""

import argparse
import json
import re
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
SCHEMA_TYPES = ("AVRO", "JSON", "PROTOBUF")


class ApiError(Exception):
    def __init__(self, status: int, error_code: int, message: str):
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message


def normalise(schema: str, schema_type: str) -> str:
    """Canonical text used to decide whether two schemas are the same; raises ApiError(42201) if invalid."""
    if schema_type == "PROTOBUF":
        if not schema.strip():
            raise ApiError(422, 42201, "Invalid schema: empty PROTOBUF schema")
        return schema.strip()
    try:
        parsed = json.loads(schema)
    except ValueError as e:
        raise ApiError(422, 42201, f"Invalid schema {schema!r}: not valid JSON: {e}") from None
    if schema_type == "AVRO":
        ok = (
            isinstance(parsed, str)
            or (isinstance(parsed, dict) and "type" in parsed)
            or isinstance(parsed, list)
        )
        if not ok:
            raise ApiError(422, 42201, f"Invalid schema {schema!r}: not an Avro schema "
                                       "(expected a type name, an object with \"type\", or a union array)")
    elif schema_type == "JSON" and not isinstance(parsed, (dict, bool)):
        raise ApiError(422, 42201, f"Invalid schema {schema!r}: a JSON Schema is an object or a boolean")
    return json.dumps(parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class Store:
    def __init__(self):
        self.lock = threading.Lock()
        self.schemas = {}  # id -> {"schema", "schemaType", "references"}
        self.by_key = {}  # (type, normalised, refs) -> id
        self.subjects = {}  # subject -> list of ids; version N is index N-1

    @staticmethod
    def parse_body(body: object):
        if not isinstance(body, dict):
            raise ApiError(400, 400, "Request body must be a JSON object")
        schema = body.get("schema")
        if not isinstance(schema, str) or schema == "":
            raise ApiError(422, 42201, "Invalid schema: field \"schema\" must be a non-empty string")
        schema_type = body.get("schemaType") or "AVRO"
        if schema_type not in SCHEMA_TYPES:
            raise ApiError(422, 42201, f"Invalid schema: unknown schemaType {schema_type!r}")
        refs = body.get("references") or []
        if not isinstance(refs, list):
            raise ApiError(422, 42201, "Invalid schema: \"references\" must be an array")
        key = (schema_type, normalise(schema, schema_type),
               json.dumps(refs, sort_keys=True, separators=(",", ":")))
        return schema, schema_type, refs, key

    def register(self, subject: str, body: object) -> dict:
        schema, schema_type, refs, key = self.parse_body(body)
        with self.lock:
            sid = self.by_key.get(key)
            if sid is None:
                sid = len(self.schemas) + 1
                self.schemas[sid] = {"schema": schema, "schemaType": schema_type, "references": refs}
                self.by_key[key] = sid
            versions = self.subjects.setdefault(subject, [])
            if sid not in versions:
                versions.append(sid)
            return {"id": sid}

    def lookup(self, subject: str, body: object) -> dict:
        _, _, _, key = self.parse_body(body)
        with self.lock:
            versions = self.subjects.get(subject)
            if versions is None:
                raise ApiError(404, 40401, f"Subject '{subject}' not found.")
            sid = self.by_key.get(key)
            if sid is None or sid not in versions:
                raise ApiError(404, 40403, "Schema not found")
            return self._version_view(subject, versions.index(sid) + 1, sid)

    def _version_view(self, subject: str, version: int, sid: int) -> dict:
        s = self.schemas[sid]
        out = {"subject": subject, "version": version, "id": sid}
        if s["schemaType"] != "AVRO":
            out["schemaType"] = s["schemaType"]
        if s["references"]:
            out["references"] = s["references"]
        out["schema"] = s["schema"]
        return out

    def schema_by_id(self, sid: int) -> dict:
        with self.lock:
            s = self.schemas.get(sid)
            if s is None:
                raise ApiError(404, 40403, f"Schema {sid} not found")
            out = {}
            if s["schemaType"] != "AVRO":
                out["schemaType"] = s["schemaType"]
            if s["references"]:
                out["references"] = s["references"]
            out["schema"] = s["schema"]
            return out

    def id_versions(self, sid: int) -> list:
        with self.lock:
            if sid not in self.schemas:
                raise ApiError(404, 40403, f"Schema {sid} not found")
            return [{"subject": subj, "version": vs.index(sid) + 1}
                    for subj, vs in sorted(self.subjects.items()) if sid in vs]

    def list_subjects(self) -> list:
        with self.lock:
            return sorted(self.subjects)

    def list_versions(self, subject: str) -> list:
        with self.lock:
            versions = self.subjects.get(subject)
            if versions is None:
                raise ApiError(404, 40401, f"Subject '{subject}' not found.")
            return list(range(1, len(versions) + 1))

    def get_version(self, subject: str, version: str) -> dict:
        if version == "latest":
            v = -1
        else:
            try:
                v = int(version)
            except ValueError:
                v = 0
            if v == 0 or v < -1 or v > 2**31 - 1:
                raise ApiError(422, 42202, f"The specified version '{version}' is not a valid version id. "
                                           "Allowed values are between [1, 2^31-1] and the string \"latest\"")
        with self.lock:
            versions = self.subjects.get(subject)
            if versions is None:
                raise ApiError(404, 40401, f"Subject '{subject}' not found.")
            if v == -1:
                v = len(versions)
            if v > len(versions):
                raise ApiError(404, 40402, f"Version {version} not found.")
            return self._version_view(subject, v, versions[v - 1])


STORE = Store()

SEG = r"([^/]+)"
ROUTES = [
    # (method, regex, handler name)
    ("GET", r"/", "root"),
    ("GET", r"/subjects", "subjects"),
    ("POST", rf"/subjects/{SEG}/versions", "register"),
    ("GET", rf"/subjects/{SEG}/versions", "versions"),
    ("GET", rf"/subjects/{SEG}/versions/{SEG}", "version"),
    ("GET", rf"/subjects/{SEG}/versions/{SEG}/schema", "version_schema"),
    ("POST", rf"/subjects/{SEG}", "lookup"),
    ("GET", r"/schemas/ids/(\d+)", "schema_by_id"),
    ("GET", r"/schemas/ids/(\d+)/versions", "id_versions"),
]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every response carries Content-Length
    server_version = "relec-bed-schema-registry/1"

    def log_message(self, fmt, *args):
        sys.stderr.write("[%s] %s\n" % (self.log_date_time_string(), fmt % args))

    # --- plumbing -------------------------------------------------------------------------------------
    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, payload, raw: bool = False) -> None:
        if raw:
            data = payload.encode("utf-8")
            ctype = "text/plain; charset=utf-8"
        else:
            data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            ctype = CONTENT_TYPE
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _json_body(self):
        raw = self._read_body()
        try:
            return json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(400, 400, f"Unexpected request body (not JSON): {e}") from None

    def _dispatch(self, method: str) -> None:
        path = urlsplit(self.path).path
        if len(path) > 1:
            path = path.rstrip("/")
        try:
            path_matched = False
            for m, pattern, name in ROUTES:
                match = re.fullmatch(pattern, path)
                if not match:
                    continue
                path_matched = True
                if m != method:
                    continue
                args = [unquote(g) for g in match.groups()]
                status, payload, raw = getattr(self, "h_" + name)(*args)
                self._send(status, payload, raw)
                return
            if path_matched:
                self._read_body()
                raise ApiError(405, 405, "HTTP 405 Method Not Allowed")
            raise ApiError(404, 404, "HTTP 404 Not Found")
        except ApiError as e:
            self._send(e.status, {"error_code": e.error_code, "message": e.message})
        except Exception as e:  # noqa: BLE001 - report instead of dropping the connection
            self.log_error("internal error: %r", e)
            self._send(500, {"error_code": 50001, "message": f"Error in the backend data store: {e}"})

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    # --- endpoints --------------------------------------------------------------------------------------
    def h_root(self):
        return 200, {}, False

    def h_subjects(self):
        return 200, STORE.list_subjects(), False

    def h_register(self, subject):
        return 200, STORE.register(subject, self._json_body()), False

    def h_lookup(self, subject):
        return 200, STORE.lookup(subject, self._json_body()), False

    def h_versions(self, subject):
        return 200, STORE.list_versions(subject), False

    def h_version(self, subject, version):
        return 200, STORE.get_version(subject, version), False

    def h_version_schema(self, subject, version):
        return 200, STORE.get_version(subject, version)["schema"], True

    def h_schema_by_id(self, sid):
        return 200, STORE.schema_by_id(int(sid)), False

    def h_id_versions(self, sid):
        return 200, STORE.id_versions(int(sid)), False


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main() -> None:
    ap = argparse.ArgumentParser(description="In-memory Confluent Schema Registry stand-in (test bed)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18081)
    ap.add_argument("--bed-state", help="ignored; lets registry.sh recognise its own process")
    args = ap.parse_args()

    httpd = Server((args.host, args.port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=httpd.shutdown, daemon=True).start())
    print(f"schema registry stand-in listening on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    try:
        httpd.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


if __name__ == "__main__":
    main()
