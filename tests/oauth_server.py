"""A real RFC 7009 token revocation endpoint (Authlib's RevocationEndpoint in Flask), standing in for a
voice assistant's authorization server in the incident tests. It holds the integration grants'
refresh tokens, authenticates the client with HTTP Basic, and marks tokens revoked. With
``introspection=True`` it also serves a real RFC 7662 introspection endpoint (Authlib's
IntrospectionEndpoint: ``active: false`` for a revoked or unknown token). ``honours=False`` makes a
server that answers 200 to a revocation but keeps the token active (what introspection exists to catch)."""

from __future__ import annotations

import hmac
import threading
from dataclasses import dataclass, field
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import Flask
from werkzeug.serving import make_server


class Client(ClientMixin):  # type: ignore[misc]
    def __init__(self, client_id: str, secret: str) -> None:
        self.client_id, self.secret = client_id, secret

    def get_client_id(self) -> str:
        return self.client_id

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(client_secret, self.secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "client_secret_basic"

    def get_default_redirect_uri(self) -> str:
        return ""

    def get_allowed_scope(self, scope: str) -> str:
        return ""

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return False


@dataclass
class Token:
    value: str
    client_id: str
    revoked: bool = False

    def check_client(self, client: Client) -> bool:
        return client.get_client_id() == self.client_id

    def is_revoked(self) -> bool:
        return self.revoked

    def is_expired(self) -> bool:
        return False


@dataclass
class OAuthServer:
    client_id: str
    secret: str
    tokens: dict[str, Token] = field(default_factory=dict)
    url: str = ""
    introspection_url: str = ""
    requests: int = 0
    introspections: int = 0

    def issue(self, value: str) -> None:
        self.tokens[value] = Token(value, self.client_id)

    def revoked(self) -> set[str]:
        return {t.value for t in self.tokens.values() if t.revoked}


def start_oauth_server(client_id: str, secret: str, *, introspection: bool = False,
                       honours: bool = True) -> tuple[OAuthServer, Any]:
    state = OAuthServer(client_id, secret)
    app = Flask("piiguard-test-oauth")
    clients = {client_id: Client(client_id, secret)}

    class Revocation(RevocationEndpoint):  # type: ignore[misc]
        CLIENT_AUTH_METHODS = ["client_secret_basic"]  # noqa: RUF012 — Authlib's class attribute

        def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
            return state.tokens.get(token_string)

        def revoke_token(self, token: Token, request: Any) -> None:
            token.revoked = honours

    class Introspection(IntrospectionEndpoint):  # type: ignore[misc]
        CLIENT_AUTH_METHODS = ["client_secret_basic"]  # noqa: RUF012 — Authlib's class attribute

        def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
            return state.tokens.get(token_string)

        def check_permission(self, token: Token, client: Client, request: Any) -> bool:
            return token.check_client(client)

        def introspect_token(self, token: Token) -> dict[str, Any]:
            return {"active": True, "client_id": token.client_id, "token_type": "refresh_token"}

    server = AuthorizationServer(app, query_client=clients.get, save_token=lambda token, request: None)
    server.register_endpoint(Revocation)
    server.register_endpoint(Introspection)

    @app.route("/oauth/revoke", methods=["POST"])
    def revoke() -> Any:
        state.requests += 1
        return server.create_endpoint_response("revocation")

    @app.route("/oauth/introspect", methods=["POST"])
    def introspect() -> Any:
        if not introspection:
            return "not here", 404
        state.introspections += 1
        return server.create_endpoint_response("introspection")

    http = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{http.server_port}/oauth/revoke"
    if introspection:
        state.introspection_url = f"http://127.0.0.1:{http.server_port}/oauth/introspect"
    return state, http
