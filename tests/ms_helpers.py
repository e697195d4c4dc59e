"""Microsoft accounts for tests, backed by the fake sign-in service and the fake Graph API.

`ms_secret` goes through the real device flow of daemon.oauth_microsoft against the fake
(msal and all), so a test that needs a linked account holds exactly what linking stores.
"""

from __future__ import annotations

from typing import Any

from daemon import oauth_microsoft
from daemon.config import Config, with_overrides
from daemon.models import AccessMode

CLIENT_ID = "homecal-test-client"
AUTHORITY = "https://login.microsoftonline.com/common"


def microsoft_config(graph_fake: Any, ms_login: Any, config: Config | None = None, **overrides: Any) -> Config:
    """A config whose [microsoft] section points at the fakes (graph_fake may be None)."""
    values = {"client_id": CLIENT_ID, "authority": AUTHORITY, "login_endpoint": ms_login.endpoint}
    if graph_fake is not None:
        values["graph_endpoint"] = graph_fake.endpoint
    return with_overrides(config or Config(), microsoft=values | overrides)


def ms_secret(config: Config, ms_login: Any, email: str, mode: AccessMode | str = AccessMode.READ_WRITE) -> dict:
    """The secret of `email` (added to the directory if unknown) linked in `mode` via the device flow."""
    if email.lower() not in ms_login.directory.users:
        ms_login.directory.add_user(email)
    flow = oauth_microsoft.start_device(config, mode)
    ms_login.approve_device(flow["user_code"], email)  # approved before the first poll: no waiting
    return oauth_microsoft.finish_device(config, flow, timeout=10)
