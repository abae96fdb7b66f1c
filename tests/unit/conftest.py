"""Fixtures of the unit ring: nothing here starts a server but in-process fakes."""

import pytest

from tests.support.fake_appliance import FakeAppliance


@pytest.fixture
def fake():
    appliance = FakeAppliance()
    yield appliance
    appliance.server.shutdown()
    appliance.server.server_close()
