"""A checked version range of one installed distribution."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import metadata

from packaging.version import InvalidVersion, Version

from commerce_observe._internal.selfstats import stats


def _release(version: str) -> tuple[int, ...]:
    """The release numbers of a version (pre-release and local parts dropped); () if unparsable."""
    try:
        return Version(version).release
    except InvalidVersion:
        return ()


@dataclass(frozen=True)
class Range:
    """``low <= installed version < high`` (release numbers only)."""

    distribution: str
    low: tuple[int, ...]
    high: tuple[int, ...]

    @functools.cached_property
    def installed(self) -> str | None:
        try:
            return metadata.version(self.distribution)
        except metadata.PackageNotFoundError:
            return None

    @functools.cached_property
    def fast(self) -> bool:
        version = self.installed
        return version is not None and self.low <= _release(version) < self.high

    def check(self) -> bool:
        """The fast-path answer, with one log line and a count when it is off."""
        if not self.fast:
            name = f"compat.fallback.{self.distribution}"
            stats.record_failure(
                name, "%s %s is outside the range whose internals commerce_observe reads (%s to below %s): "
                "using its public API instead", self.distribution, self.installed or "(not installed)",
                ".".join(map(str, self.low)), ".".join(map(str, self.high)))
        return self.fast
