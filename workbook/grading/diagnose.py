"""Why a grading test failed, in the learner's words: a pure function of the failure.

`classify` looks only at what it is given: the exception, where it was raised, and the
servers the chapter itself uses (with which of them do not answer right now, which the
caller finds out with `workbook.grading.handoff.ChapterServers.down`). It never connects to,
resolves or starts a server, and a chapter that uses no server never hears of one.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from workbook.grading.records import Kind

SERVER_DOWN = (
    "{label} does not answer at {url}: it stopped during the run, or {env_var} points to the wrong place. "
    "Start it again (`docker compose up -d`, or `python3 -m workbook services start`) or correct {env_var}, "
    "then grade again; `python3 -m workbook doctor` shows what is wrong."
)
SERVER_FULL = (
    "{label} at {url} refuses more connections ({detail}): too many gradings or open connections at once. "
    "Wait a moment and grade again; an instructor can raise the server's limit ({setting})."
)
_LABELS = {"postgres": ("PostgreSQL", "DATABASE_URL", "max_connections"), "redis": ("Redis", "REDIS_URL", "maxclients")}
_CONNECTION_ERRORS = {"ConnectionError", "ConnectionRefusedError", "ConnectionResetError", "ConnectionDoesNotExistError",
                      "CannotConnectNowError", "ConnectionFailureError", "BrokenPipeError"}
_LIMITS = (
    ("postgres", re.compile(r"too many clients|remaining connection slots are reserved|TooManyConnections", re.I)),
    ("redis", re.compile(r"max number of clients reached", re.I)),
)


@dataclass(frozen=True)
class Failure:
    """One failed phase of one grading test, as the plugin saw it."""

    error: BaseException
    #: pytest's one-line rendering of the exception (``excinfo.exconly()``)
    text: str
    #: " (exercises/02_x.py, line 12)": the learner's line it came from, or ""
    where: str
    #: the test function's name
    test: str
    #: "exercises/00_welcome.py": the learner's file of this chapter
    learner_file: str
    #: the per-test time limit, for the message of a timeout
    timeout: str = "?"
    #: a hidden check's promise, in the stub's words, for an error whose own text does not say what was expected
    promise: str = ""

    @property
    def raised_inside_pytest(self) -> bool:
        """Whether the innermost frame of the traceback is pytest's or pytest-asyncio's own code."""
        return raised_inside_pytest(self.error)


@dataclass(frozen=True)
class Server:
    """A server the chapter uses: where it is (passwords masked)."""

    name: str
    masked_url: str


def classify(failure: Failure, servers: Mapping[str, Server] = {}, down: Collection[str] = ()) -> tuple[Kind, str]:  # noqa: B006
    """(kind, message) for one failure. `servers`: the chapter's own; `down`: those of them that do not answer."""
    error, text, where = failure.error, _without_noise(failure.text), failure.where
    if _is_not_implemented(error):
        return Kind.NOT_IMPLEMENTED, f"Still raises NotImplementedError{where}."
    if "Timeout (>" in text and "from pytest-timeout" in text:
        if _stopped_in(error, failure.learner_file):
            return Kind.TIMEOUT, (f"Stopped after {failure.timeout} s{where}: that code kept running without ever "
                                  "handing control back, so it never finished. An endless loop? A loop must end, and a "
                                  "long one must `await` (e.g. `await asyncio.sleep(0)`) so other tasks get a turn.")
        return Kind.TIMEOUT, (f"Stopped after {failure.timeout} s{where}: the test never finished; it was waiting. An await "
                              "that waits for something that never happens (a message never sent, a lock never "
                              "released, a task never started)? Bound such waits with `asyncio.timeout()`.")
    if "async def functions are not natively supported" in text:
        return Kind.ASSERTION, (f"{failure.test} is an `async def` test without `@pytest.mark.asyncio`, so "
                                "pytest cannot run it (the workbook uses pytest-asyncio's strict mode): mark it.")
    if isinstance(error, MemoryError):
        return Kind.ASSERTION, (f"MemoryError{where}: your code used more memory than a chapter's grading may "
                                "(README, \"Time budgets\"; WORKBOOK_CHAPTER_MEMORY raises the limit). Is something "
                                "growing without end, e.g. a list filled in an endless loop?")
    environment = environment_problem(error, servers, down)
    if environment:
        return Kind.ENVIRONMENT, environment
    explained = _common_mistake(failure, text)
    if explained:
        return explained
    if type(error).__name__ == "Failed":
        if not getattr(error, "pytrace", True):  # pytest.fail(rule, pytrace=False): the check states the rule itself
            return Kind.ASSERTION, plain_names(str(error))
        return Kind.ASSERTION, _against(failure.promise, plain_names(f"{text}{where}"))  # e.g. pytest.raises: DID NOT RAISE
    message = plain_names(f"{text}{where}")
    # An assert of a grading test states its rule; any other exception came from the learner's code and
    # says only what happened: name the promise it broke as well.
    return Kind.ASSERTION, message if isinstance(error, AssertionError) else _against(failure.promise, message)


def _against(promise: str, message: str) -> str:
    return f"The docstring promises: {promise.rstrip('.')}. Instead: {message}" if promise else message


def _stopped_in(error: BaseException, learner_file: str) -> bool:
    """Whether the timeout stopped the learner's own code running (a busy loop), not an event loop waiting."""
    tb, last = error.__traceback__, ""
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if "pytest_timeout" not in filename and "_pytest" not in filename:
            last = filename
        tb = tb.tb_next
    return bool(learner_file) and last.replace("\\", "/").endswith(learner_file)


def may_be_server_trouble(error: BaseException) -> bool:
    """Whether `error` could come from a server that is down or full (then the caller probes the chapter's servers)."""
    return any(_is_connection_error(e) or _connection_limit(e) for e in _chain(error))


def environment_problem(error: BaseException, servers: Mapping[str, Server], down: Collection[str]) -> str:
    """The message when `error` is the environment's fault, else "".

    A connection error is the environment's fault only when a server the chapter uses does not
    answer; otherwise the learner's code connected to the wrong place, which is theirs to fix.
    A server refusing more connections (a room exhausting its limit) is the environment's too.
    """
    for current in _chain(error):
        server = _connection_limit(current)
        if server in servers:
            label, _env_var, setting = _LABELS[server]
            detail = str(current).strip().splitlines()[0][:120] if str(current).strip() else type(current).__name__
            return SERVER_FULL.format(label=label, url=servers[server].masked_url, detail=detail, setting=setting)
    if any(_is_connection_error(e) for e in _chain(error)):
        for name in sorted(down):
            if name in servers:
                label, env_var, _setting = _LABELS[name]
                return SERVER_DOWN.format(label=label, url=servers[name].masked_url, env_var=env_var)
    return ""


def _chain(error: BaseException) -> Iterator[BaseException]:
    """`error`, its causes and contexts, and the members of exception groups, each once."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend(getattr(current, "exceptions", ()))
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                pending.append(linked)


def _is_connection_error(error: BaseException) -> bool:
    # OSError covers refused TCP ports and a Unix socket that is gone (the embedded PostgreSQL
    # listens on one); a server that still answers clears it (see `environment_problem`).
    names = {cls.__name__ for cls in type(error).__mro__}
    return isinstance(error, OSError) or bool(names & _CONNECTION_ERRORS)


def _connection_limit(error: BaseException) -> str:
    """"postgres" or "redis" when `error` says that server refuses more connections, else ""."""
    text = f"{type(error).__name__}: {error}"
    for name, pattern in _LIMITS:
        if pattern.search(text):
            return name
    return ""


def _is_not_implemented(error: BaseException) -> bool:
    return isinstance(error, NotImplementedError)


def _without_noise(text: str) -> str:
    return "\n".join(line for line in text.strip().splitlines()
                     if line.strip() and not line.strip().startswith("Use -v to get"))


def _common_mistake(failure: Failure, text: str) -> tuple[Kind, str] | None:
    """The learner's likely mistake in words, for errors whose own text would only puzzle them."""
    error = failure.error
    found = re.search(r"requested an async fixture '(\w+)'", text)
    if found:
        return Kind.ASSERTION, (f"`{found.group(1)}` is an `async def` fixture decorated with `@pytest.fixture`: in strict "
                                "mode an async fixture needs `@pytest_asyncio.fixture` (chapter 01).")
    if "ScopeMismatch" in text and "_scoped_runner" in text:
        fixture = re.findall(r"def (\w+)\(", text.split("Requested fixture")[0])
        name = f"`{fixture[-1]}`" if fixture else "A fixture"
        return Kind.ASSERTION, (f"{name} lives longer than one test (its `scope`), but its event loop does not: give it "
                                "a `loop_scope` as long as its `scope`, e.g. "
                                '`@pytest_asyncio.fixture(scope="module", loop_scope="module")` (chapter 01, loop scopes).')
    if type(error).__name__ == "FixtureLookupError":
        missing = getattr(error, "argname", None) or "?"
        return Kind.ASSERTION, (f"There is no fixture named `{missing}` in {failure.learner_file} any more (deleted or "
                                f"renamed?). The grading needs it: put it back (`git diff {failure.learner_file}` shows "
                                "what changed).")
    used = _coroutine_used(error, failure.learner_file, failure.where)
    if used:
        return Kind.ASSERTION, used
    unawaited = _never_awaited(error)
    if unawaited:
        return Kind.ASSERTION, (f"`{unawaited}(...)` was called without `await`, so it never ran: put `await` in front "
                                "of the call.")
    if type(error) is AssertionError and not str(error) and failure.raised_inside_pytest:
        # pytest-asyncio's own check, after an earlier test already reported the real cause
        return Kind.FOLLOW_ON, "pytest-asyncio could not set up this test's fixtures (see the first failing test)."
    return None


_COROUTINE_USED = re.compile(r"'coroutine' object (has no attribute '\w+'|is not \w+|does not support [\w ]+)|"
                            r"type 'coroutine' has no len")


def _coroutine_used(error: BaseException, learner_file: str, where: str = "") -> str:
    """A coroutine used as if it were its result, anywhere in `error`'s chain: name the call that made it.

    The first error is not always the last: `stack.push_async_callback(connection.close)` on a
    coroutine `connection` fails at exit with a TypeError whose context is the AttributeError.
    """
    for current in _chain(error):
        if not _COROUTINE_USED.search(str(current)):
            continue
        what = f"{type(current).__name__}: {current}"
        coroutine = getattr(current, "obj", None)  # AttributeError knows the object (3.10+)
        origin = getattr(coroutine, "cr_origin", None)
        code = getattr(coroutine, "cr_code", None)
        if code is not None:
            where = ""
            for filename, line, _function in origin or ():
                if Path(filename).as_posix().endswith(learner_file):
                    where = f" ({learner_file}, line {line})"
            return (f"`{code.co_qualname}(...)` was called without `await`{where}, so it never ran: what it gave back "
                    f"is a coroutine, not its result ({what}). Put `await` in front of the call.")
        line = _learner_line(current, learner_file) or (where if current is error else "")
        return (f"{what}{line}: a coroutine was used as if it were its result, so the "
                "call that made it never ran. Put `await` in front of that call (e.g. `connection = await "
                "asyncpg.connect(...)`, `value = await client.get(key)`).")
    return ""


def _learner_line(error: BaseException, learner_file: str) -> str:
    line = 0
    tb = error.__traceback__
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename).as_posix().endswith(learner_file):
            line = tb.tb_lineno
        tb = tb.tb_next
    return f" ({learner_file}, line {line})" if line else ""


def _never_awaited(error: BaseException) -> str:
    """The name of a coroutine that was never awaited, from a warning in `error` (or in its group)."""
    for current in _chain(error):
        found = re.search(r"coroutine '([\w.]+)' was never awaited", str(current))
        if found:
            return found.group(1)
    return ""


def raised_inside_pytest(error: BaseException) -> bool:
    """Whether the innermost frame of `error`'s traceback is pytest's or pytest-asyncio's own code."""
    tb = error.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return any(part in tb.tb_frame.f_code.co_filename for part in ("pytest_asyncio", "_pytest"))


def plain_names(message: str) -> str:
    """Messages name the learner's objects as the learner does, not by the grader's module paths."""
    message = re.sub(r"module '(exercises|solutions)\.(\w+)' has no attribute '(\w+)'",
                     r"\1/\2.py has no `\3` (renamed or deleted? the grading needs that name)", message)
    message = re.sub(r"<(?:exercises|solutions)\.\d\d_\w+?\.(\w+) object at 0x[0-9a-f]+>", r"<\1 object>", message)
    message = re.sub(r"\b(?:exercises|solutions)\.\d\d_[a-z0-9_]+\.(?=[A-Za-z_])", "", message)
    coroutine = re.search(r"<coroutine object ([\w.]+) at 0x[0-9a-f]+>", message)
    if coroutine:
        message += (f"\nThat is a coroutine object: `{coroutine.group(1)}(...)` was called without `await`, "
                    "so it never ran. Put `await` in front of the call.")
    return message


def warned(message: Warning | str, category: type[Warning], filename: str, lineno: int, learner_folder: Path,
           root: Path) -> tuple[int, str] | None:
    """What a warning raised while a check ran says about the learner's code: (rank, words), or None.

    Rank 0, a coroutine called without `await` (the cause of what follows); rank 1, a deprecated
    call (the grading tests and solutions run warning-free under `-W error`, so it is the learner's).
    """
    path = Path(filename).resolve()
    where = (f" ({path.relative_to(root.resolve()).as_posix()}, line {lineno})"
             if path.is_relative_to(learner_folder.resolve()) else "")
    found = re.match(r"coroutine '([\w.<>]+)' was never awaited", str(message))
    if found and issubclass(category, RuntimeWarning):
        name = found.group(1)
        if name.rsplit(".", 1)[-1].startswith("_"):  # a grader's private helper: never named to a learner
            return 0, f"A coroutine was called without `await`{where}, so it never ran: put `await` in front of the call."
        return 0, (f"`{name}(...)` was called without `await`{where}, so it never ran (and whatever came after it "
                   "saw no result): put `await` in front of the call.")
    if issubclass(category, DeprecationWarning):
        return 1, (f"Your code calls a deprecated API{where}: {' '.join(str(message).split())} "
                   "Use the current call it names (the docstrings and notebooks use it).")
    return None
