"""The HTTP side of Microsoft sign-in: msal's http_client and the msal app itself.

msal accepts only https authorities and builds every URL from the authority and the metadata
it fetched, so `[microsoft] login_endpoint` (a local fake in tests, a proxy elsewhere) has to
take effect below msal: LoginHttp sends requests for the authority's host there. msal_app
builds the Public or Confidential client on it and turns construction failures into
homecal's errors. daemon.oauth_microsoft re-exports both.
"""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import msal
import requests
from msal.exceptions import MsalServiceError

from daemon.config import Config
from daemon.errors import ProviderError, UsageError

#: seconds to wait for any answer of the sign-in service
HTTP_TIMEOUT = 30
#: metadata answers (openid-configuration, instance discovery) are reused this long
METADATA_TTL = 24 * 3600
_METADATA: dict[str, tuple[float, int, bytes, dict[str, str]]] = {}
_METADATA_LOCK = threading.Lock()


class LoginHttp(requests.Session):
    """msal's http_client: requests for the authority's host go to `login_endpoint` when set.

    msal accepts only https authorities and builds every URL from the authority and the
    metadata it fetched, so pointing it at another server has to happen below it. The path
    and query are kept; only scheme and host change. Metadata GETs are cached per process
    (msal itself caches them per app only, and a TokenSource builds an app per provider).
    """

    def __init__(self, config: Config, authority: str | None = None) -> None:
        super().__init__()
        self.authority_host = (urlsplit(authority or config.microsoft.authority).hostname or "").lower()
        self.login_endpoint = config.microsoft.login_endpoint.rstrip("/")
        adapter = requests.adapters.HTTPAdapter(max_retries=1)  # msal's own default: one retry
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def route(self, url: str) -> str:
        """Where a request for `url` really goes."""
        parts = urlsplit(url)
        if not self.login_endpoint or (parts.hostname or "").lower() != self.authority_host:
            return url
        target = urlsplit(self.login_endpoint)
        base = target.path.rstrip("/")
        return urlunsplit((target.scheme, target.netloc, base + parts.path, parts.query, parts.fragment))

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        url = self.route(url)
        metadata = method.upper() == "GET" and (url.split("?")[0].endswith(("/openid-configuration",
                                                                            "/discovery/instance")))
        key = f"{url}?{sorted((kwargs.get('params') or {}).items())}"
        if metadata:
            with _METADATA_LOCK:
                hit = _METADATA.get(key)
            if hit and hit[0] > time.time():
                return _response(url, hit[1], hit[2], hit[3])
        response = super().request(method, url, *args, **kwargs)
        if metadata and response.status_code == 200:
            with _METADATA_LOCK:
                _METADATA[key] = (time.time() + METADATA_TTL, 200, response.content, dict(response.headers))
        return response


def _response(url: str, status: int, body: bytes, headers: dict[str, str]) -> requests.Response:
    r = requests.Response()
    r.status_code, r._content, r.url = status, body, url
    r.headers.update(headers)
    return r


def require_client_id(config: Config, client_id: str | None) -> str:
    cid = client_id or config.microsoft.client_id
    if not cid:
        raise UsageError("no Microsoft app registration is configured: set [microsoft] client_id (the "
                         "Application (client) id of your Entra app registration) in the config file; "
                         "the README explains how to register the app")
    return cid


def unreachable(http: LoginHttp) -> ProviderError:
    return ProviderError(f"cannot reach Microsoft's sign-in service ({http.authority_host}): check this "
                         "server's network connection and try again")


def msal_app(config: Config, cache: msal.TokenCache | None = None, *, client_id: str | None = None,
             authority: str | None = None, public: bool | None = None) -> msal.ClientApplication:
    """A Public (or, with a client secret configured, Confidential) client on the sign-in service.

    `public=True` forces a public client (msal's device flow exists only there). Building
    the app fetches the authority's metadata: ProviderError when that fails on the network,
    UsageError when Microsoft does not know the authority.
    """
    cid = require_client_id(config, client_id)
    authority = authority or config.microsoft.authority
    http = LoginHttp(config, authority)
    secret = config.microsoft.client_secret
    try:
        if secret and not public:
            return msal.ConfidentialClientApplication(cid, client_credential=secret, authority=authority,
                                                      token_cache=cache, http_client=http)
        return msal.PublicClientApplication(cid, authority=authority, token_cache=cache, http_client=http)
    except requests.RequestException:
        raise unreachable(http) from None
    except MsalServiceError:
        raise ProviderError("Microsoft's sign-in service answered with a server error: try again later") from None
    except ValueError:
        raise UsageError(f"Microsoft's sign-in service does not know the authority {authority!r}: check "
                         "[microsoft] authority (e.g. https://login.microsoftonline.com/common)") from None
