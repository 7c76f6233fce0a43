from ..batch_utils import clips  # noqa: F401 - the shared fixture
