"""Type hints of vrl: shared-memory rate limits for pools of worker processes."""
from types import TracebackType
from typing import Any, Callable, Final, Mapping, NamedTuple, Optional, TypeVar, Union

_F = TypeVar("_F", bound=Callable[..., Any])
_Value = Union[str, int, None]          # a request field; non-str values go through str()
_Attrs = Optional[Mapping[str, Union[str, int]]]

__version__: Final[str]
"""The version of vrl, as meson.build's project() gives it."""

HAVE_FEEDBACK: Final[bool]
"""True when this build has Client.release/refund/observe and parse_retry_after."""

RATE: Final[int]
GATE: Final[int]
WINDOW: Final[int]
QUOTA: Final[int]
SLOTS: Final[int]

VERDICT_COOLDOWN: Final[int]
VERDICT_SHADOW: Final[int]
VERDICT_TABLE_FULL: Final[int]
VERDICT_NO_LIMIT: Final[int]
VERDICT_OVERAGE: Final[int]
VERDICT_ALERT: Final[int]
VERDICT_SATURATED: Final[int]
VERDICT_UNMATCHED: Final[int]
VERDICT_PACED: Final[int]
VERDICT_SHARE: Final[int]

EDENIED: Final[int]
ENOSEG: Final[int]
EMAGIC: Final[int]
EFORMAT: Final[int]
ECORRUPT: Final[int]
EFULL: Final[int]
ENOLIMIT: Final[int]
EREADONLY: Final[int]
ETOOMANY: Final[int]
ENOKEY: Final[int]
EBUSY: Final[int]
EOWNER: Final[int]
EUNMATCHED: Final[int]
ENULL: Final[int]
EHANDLE: Final[int]
ERESERVED: Final[int]

FB_COOLDOWN: Final[int]
FB_RECONCILE: Final[int]
FB_REFUND: Final[int]
FB_IGNORED: Final[int]
FB_ADAPT: Final[int]


def now() -> float:
    """Monotonic seconds: vrl's clock, the same as time.monotonic()."""


def now_ns() -> int:
    """Monotonic nanoseconds, the clock of Verdict.at_ns."""


def strerror(code: int) -> str:
    """Describe a vrl error code."""


def libvrl_version() -> str:
    """The version of the libvrl the module runs with ("0.2.0")."""


def parse_retry_after(value: Union[str, bytes]) -> float:
    """Seconds a Retry-After value asks to wait (integer, fractional or
    HTTP-date); ValueError when malformed. Only when HAVE_FEEDBACK."""


class Error(OSError):
    """A vrl error, with the library's message."""
    code: int
    """The negative vrl code (vrl.ENOSEG, ...) or a negated errno."""
    name: str
    """Its symbolic name: 'VRL_ENOSEG', 'EACCES'."""


class RateLimited(Error):
    """A request was denied (Client.take, Client.limit, Client.limited)."""
    verdict: Verdict
    retry_after: Optional[float]
    """Seconds until a retry can pass; None when it never can."""


class SegmentNotFound(Error, FileNotFoundError):
    """No vrl segment by that name: is vrld running, with the same segment name?"""


class Unmatched(Error):
    """No limit matches the request and the config says unmatched: deny."""


class Verdict:
    """The outcome of an acquire; true when granted."""
    @property
    def granted(self) -> bool: ...
    @property
    def limit(self) -> Optional[str]:
        """The deciding limit: the one that denied, or on a grant the one
        with the fewest permits left; None when no limit matched."""
    @property
    def limit_index(self) -> int: ...
    @property
    def retry_after(self) -> Optional[float]:
        """Seconds to wait before retrying; 0.0 when granted; None: never."""
    @property
    def retry_after_ns(self) -> int: ...
    @property
    def remaining(self) -> int: ...
    @property
    def limit_value(self) -> int: ...
    @property
    def reset_after(self) -> float: ...
    @property
    def reset_ns(self) -> int: ...
    @property
    def at_ns(self) -> int:
        """Monotonic ns the decision counts at (a waiting acquire: the reserved time)."""
    @property
    def matched(self) -> int: ...
    @property
    def flags(self) -> int: ...
    @property
    def kind(self) -> int:
        """RATE, GATE, WINDOW, QUOTA or SLOTS; 0 when no limit matched."""
    @property
    def cost(self) -> int: ...
    @property
    def pace(self) -> Optional[float]:
        """The slowest effective rate of the request's adaptive keys, a fraction
        of its figure (1.0: at it); None when none adapts."""
    @property
    def overage(self) -> int:
        """Soft quota: units past the limit after this grant; 0 within it."""
    @property
    def cooldown(self) -> bool: ...
    @property
    def shadow(self) -> bool: ...
    @property
    def table_full(self) -> bool: ...
    @property
    def no_limit(self) -> bool: ...
    @property
    def unmatched(self) -> bool: ...
    @property
    def over(self) -> bool:
        """VERDICT_OVERAGE: a soft quota granted units past its limit."""
    @property
    def alert(self) -> bool: ...
    @property
    def share(self) -> bool:
        """VERDICT_SHARE: denied by a global limit's key for want of this host's
        share of it; the limit itself has room."""
    @property
    def saturated(self) -> bool:
        """VERDICT_SATURATED: a soft quota's count is at its ceiling (2**40 - 1
        units in the period): its overage stops growing."""
    def __bool__(self) -> bool: ...


class Resolved:
    """A request matched and hashed once; acquire() is the hot path."""
    @property
    def client(self) -> Client: ...
    def acquire(self, cost: Optional[int] = None) -> Verdict:
        """Acquire now with cost (default: the one given to resolve())."""


class Feedback(NamedTuple):
    """What Client.observe() did with a response."""
    actions: int
    limit: Optional[str]
    cooldown_until: Optional[float]
    server_limit: Optional[int]
    server_remaining: Optional[int]
    ignored: Optional[str]


class Limit:
    """The context manager of Client.limit()."""
    verdict: Optional[Verdict]
    def __enter__(self) -> Verdict: ...
    def __exit__(self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> bool: ...


class Client:
    """A handle on the segment vrld created; survives fork()."""

    def __init__(self, segment: str = "/vrl", readonly: bool = False) -> None: ...
    @property
    def limits(self) -> tuple[str, ...]:
        """Names of the limits in the current config."""
    @property
    def segment(self) -> str: ...
    @property
    def readonly(self) -> bool: ...
    @property
    def closed(self) -> bool: ...

    def acquire(self, api: _Value = None, endpoint: _Value = None, token: _Value = None,
                org: _Value = None, vehicle: _Value = None, user: _Value = None,
                cost: int = 1, attrs: _Attrs = None) -> Verdict:
        """Acquire now: every matching limit or none. Never raises on a denial."""

    def take(self, api: _Value = None, endpoint: _Value = None, token: _Value = None,
             org: _Value = None, vehicle: _Value = None, user: _Value = None,
             cost: int = 1, attrs: _Attrs = None) -> Verdict:
        """As acquire(), but a denial raises RateLimited."""

    def acquire_wait(self, api: _Value = None, endpoint: _Value = None, token: _Value = None,
                     org: _Value = None, vehicle: _Value = None, user: _Value = None,
                     cost: int = 1, attrs: _Attrs = None,
                     timeout: Optional[float] = None) -> Verdict:
        """Acquire, sleeping (GIL released) up to timeout seconds; None: no bound."""

    def resolve(self, api: _Value = None, endpoint: _Value = None, token: _Value = None,
                org: _Value = None, vehicle: _Value = None, user: _Value = None,
                cost: int = 1, attrs: _Attrs = None) -> Resolved:
        """Match and hash the request once, for Resolved.acquire()."""

    def cooldown(self, limit: Optional[str] = None, *, until: Optional[float] = None,
                 for_: Optional[float] = None, api: _Value = None, endpoint: _Value = None,
                 token: _Value = None, org: _Value = None, vehicle: _Value = None,
                 user: _Value = None, attrs: _Attrs = None) -> int:
        """Close the request's key until monotonic seconds `until`, or for `for_`
        seconds; returns the monotonic ns it runs until."""

    def reset(self, limit: Optional[str] = None, *, api: _Value = None,
              endpoint: _Value = None, token: _Value = None, org: _Value = None,
              vehicle: _Value = None, user: _Value = None, attrs: _Attrs = None) -> None:
        """Make the request's key whole and lift its cooldown."""

    def release(self, limit: Optional[str] = None, cost: int = 1, *, api: _Value = None,
                endpoint: _Value = None, token: _Value = None, org: _Value = None,
                vehicle: _Value = None, user: _Value = None, attrs: _Attrs = None) -> None:
        """Give back units a slots limit holds (HAVE_FEEDBACK)."""

    def refund(self, limit: Optional[str] = None, cost: int = 1, *, api: _Value = None,
               endpoint: _Value = None, token: _Value = None, org: _Value = None,
               vehicle: _Value = None, user: _Value = None, attrs: _Attrs = None) -> None:
        """Give back units the upstream did not count (HAVE_FEEDBACK)."""

    def observe(self, response: Any, limit: Optional[str] = None, *, api: _Value = None,
                endpoint: _Value = None, token: _Value = None, org: _Value = None,
                vehicle: _Value = None, user: _Value = None,
                attrs: _Attrs = None, verdict: Optional[Verdict] = None) -> Feedback:
        """Feed back a requests/httpx/urllib3 response (HAVE_FEEDBACK). With
        verdict=, the grant's verdict: a bare 429 is charged to the adaptive
        keys that bound that grant (vrl_observe_granted)."""

    def limit(self, *, cost: int = 1, timeout: Optional[float] = None, api: _Value = None,
              endpoint: _Value = None, token: _Value = None, org: _Value = None,
              vehicle: _Value = None, user: _Value = None, attrs: _Attrs = None) -> Limit:
        """Context manager: wait up to timeout, run the block, release slots."""

    def limited(self, *, cost: Union[int, Callable[..., int]] = 1,
                timeout: Optional[float] = None,
                **fields: Union[_Value, Callable[..., _Value], _Attrs]) -> Callable[[_F], _F]:
        """Decorator: run the function inside limit(); fields may be callables
        of the function's arguments."""

    def close(self) -> None: ...
    def __enter__(self) -> Client: ...
    def __exit__(self, *exc: object) -> None: ...
