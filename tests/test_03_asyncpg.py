"""Grading tests for chapter 03 (exercises/03_asyncpg.py).

Everything here happens in the grading run's own database, in two schemas of this module's own
that the reference `bank_database_url` fixture creates and drops. Rows the graders commit have random emails and are
deleted by id by the fixture that made them; everything else happens inside transactions that
are rolled back.

Three connections are in play:
- `learner_db`: the learner's `db` fixture (03.1), under another name so that it can be graded;
- `db`: the graders' own transaction-per-test connection, in the second schema, which 03.2's checks
  and the learner's 03.3 tests (through the given `accounts` fixture) use, so those exercises do not
  depend on 03.1;
- `observer`: a plain connection (autocommit) that looks at what others have committed.
"""

from __future__ import annotations

import contextlib
import datetime
import secrets
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

import asyncpg
import pytest
import pytest_asyncio

from workbook.testing import learner_fixtures, load_reference, load_target, mutation_suite, require

ex = load_target("03_asyncpg")
ref = load_reference("03_asyncpg")
globals().update(learner_fixtures(ex))

# The tables come from the reference fixture, so a learner who edited the given one cannot break the
# grading. Registered twice: `bank_database_url` for the learner's `db` (03.1), and `graders_database_url`,
# a second schema of its own, for 03.2 and 03.3, so that not even a 03.1 fixture that commits or drops
# can affect them.
bank_database_url = ref.bank_database_url
graders_database_url = ref.bank_database_url

# The learner's `db`, graded under another name; the name `db` itself is the graders' (below).
if hasattr(ex, "db"):
    learner_db = ex.db
else:
    @pytest.fixture
    def learner_db() -> None:
        pytest.fail("exercises/03_asyncpg.py has no fixture named `db` any more: put it back (see 03.1)", pytrace=False)

# A wait for a lock that someone else's open transaction holds ends after 2 s with an error,
# instead of hanging until the 5 s test timeout.
_SETTINGS = {"lock_timeout": "2000"}


@pytest_asyncio.fixture
async def db(graders_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """The graders' own connection inside a transaction that is rolled back after the test."""
    connection = await asyncpg.connect(graders_database_url, server_settings=_SETTINGS)
    transaction = connection.transaction()
    await transaction.start()
    try:
        yield connection
    finally:
        if not connection.is_closed():
            try:
                await transaction.rollback()
            finally:
                await connection.close()


@pytest_asyncio.fixture
async def observer(bank_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection of the graders' own: it sees only what others have committed."""
    connection = await asyncpg.connect(bank_database_url, server_settings=_SETTINGS)
    try:
        yield connection
    finally:
        await connection.close()



def _email(label: str = "user") -> str:
    return f"{label}-{secrets.token_hex(6)}@example.com"


# --- 03.1 db ---------------------------------------------------------------------------------------

@pytest_asyncio.fixture
async def committed(observer: asyncpg.Connection) -> AsyncIterator[dict[str, int]]:
    """A user and an account that someone else committed before the test; deleted (by id) after it."""
    # The tables are normally there already (bank_database_url); a broken 03.1 fixture may have dropped them.
    await observer.execute(ref.SCHEMA)
    user_id = await observer.fetchval(
        "INSERT INTO users (name, email) VALUES ('someone else', $1) RETURNING id", _email("committed")
    )
    account_id = await observer.fetchval("INSERT INTO accounts (owner, balance) VALUES ('someone else', 500) RETURNING id")
    try:
        yield {"user": user_id, "account": account_id}
    finally:
        for table, row_id in (("users", user_id), ("accounts", account_id)):
            with contextlib.suppress(asyncpg.UndefinedTableError):  # a broken 03.1 fixture dropped the table
                await observer.execute(f"DELETE FROM {table} WHERE id = $1", row_id)


async def _count_or_zero(connection: asyncpg.Connection, query: str, *args: object) -> int:
    """A count query's answer; 0 if its table no longer exists (a broken 03.1 fixture dropped it)."""
    try:
        return await connection.fetchval(query, *args)
    except asyncpg.UndefinedTableError:
        return 0


def _is_a_connection(value: object) -> bool:
    """An asyncpg connection, or one borrowed from a pool (`pool.acquire()` hands out a proxy)."""
    return isinstance(value, asyncpg.Connection | asyncpg.pool.PoolConnectionProxy)


def _closed_afterwards(after_teardown: Callable[..., None], connection: object, *, graded: bool) -> None:
    """After the test: the learner's connection must be closed. If not, terminate it so that its
    open transaction cannot hold locks into the graders' clean-up (and fail, if `graded`)."""
    if isinstance(connection, asyncpg.pool.PoolConnectionProxy):
        # Borrowed from a pool: after the test the proxy is released (and answers nothing), so
        # look at the connection behind it, which must be closed (with its pool) all the same.
        connection = connection._con  # noqa: SLF001 (asyncpg offers no public way to it)

    def check() -> bool:
        is_closed = getattr(connection, "is_closed", None)
        if is_closed is None or is_closed():
            return True
        connection.terminate()  # type: ignore[attr-defined]
        return not graded

    after_teardown(check, "the connection is still open after the test: close it after the rollback "
                          "(`await connection.close()`)")


@pytest.mark.exercise("03.1", promise="open")
@pytest.mark.asyncio
async def test_db_is_an_open_connection_inside_a_transaction(workbook_after_teardown, learner_db, bank_database_url):
    _closed_afterwards(workbook_after_teardown, learner_db, graded=False)
    require(_is_a_connection(learner_db), (
        f"db must yield the asyncpg connection itself (from `await asyncpg.connect(...)`), not {learner_db!r}"
    ))
    require(not learner_db.is_closed(), "the connection db yields is already closed: close it after `yield`, not before")
    expected = urlsplit(bank_database_url).path.lstrip("/")
    actual = await learner_db.fetchval("SELECT current_database()")
    require(actual == expected, (
        f"db is connected to the database {actual!r}: connect with `asyncpg.connect(bank_database_url)`"
    ))
    require(await learner_db.fetchval("SELECT to_regclass('users') IS NOT NULL AND to_regclass('accounts') IS NOT NULL"),
             "the tables users and accounts are missing: request the `bank_database_url` fixture and connect to it")
    require(learner_db.is_in_transaction(), (
        "the test must already be inside a transaction: `transaction = connection.transaction()` and "
        "`await transaction.start()` before `yield`"
    ))


@pytest.mark.exercise("03.1", promise="hidden")
@pytest.mark.asyncio
async def test_db_hides_the_tests_writes_from_other_connections(
    workbook_after_teardown, learner_db, observer
):
    _closed_afterwards(workbook_after_teardown, learner_db, graded=False)
    email = _email("invisible")
    await learner_db.execute("INSERT INTO users (name, email) VALUES ('written by the test', $1)", email)
    seen = await observer.fetchval("SELECT count(*) FROM users WHERE email = $1", email)
    require(seen == 0, (
        "another connection can already see a row the test just inserted, so the test is not inside a "
        "transaction (every statement commits at once): start one before `yield`"
    ))


@pytest.mark.exercise("03.1", promise="rolled_back")
@pytest.mark.asyncio
async def test_db_rolls_back_what_the_test_wrote(observer, workbook_after_teardown, learner_db):
    _closed_afterwards(workbook_after_teardown, learner_db, graded=False)
    email = _email("rolled-back")
    await learner_db.execute("INSERT INTO users (name, email) VALUES ('written by the test', $1)", email)
    account_id = await learner_db.fetchval("INSERT INTO accounts (owner, balance) VALUES ('the test', 7) RETURNING id")

    async def gone() -> bool:
        users = await _count_or_zero(observer, "SELECT count(*) FROM users WHERE email = $1", email)
        accounts = await _count_or_zero(observer, "SELECT count(*) FROM accounts WHERE id = $1", account_id)
        return users == 0 and accounts == 0

    workbook_after_teardown(gone, (
        "rows the test inserted are still in the tables after the test: roll the transaction back "
        "(`await transaction.rollback()`) after `yield`, never commit it. Note that leaving "
        "`async with connection.transaction():` normally commits"
    ))


@pytest.mark.exercise("03.1", promise="others")
@pytest.mark.asyncio
async def test_db_leaves_data_committed_by_others_alone(committed, observer, workbook_after_teardown, learner_db):
    _closed_afterwards(workbook_after_teardown, learner_db, graded=False)
    # The test changes and deletes someone else's rows; the rollback must bring them back.
    await learner_db.execute("UPDATE users SET name = 'overwritten by the test' WHERE id = $1", committed["user"])
    await learner_db.execute("DELETE FROM accounts WHERE id = $1", committed["account"])

    async def untouched() -> bool:
        try:
            name = await observer.fetchval("SELECT name FROM users WHERE id = $1", committed["user"])
            balance = await observer.fetchval("SELECT balance FROM accounts WHERE id = $1", committed["account"])
        except asyncpg.UndefinedTableError:
            return False
        return name == "someone else" and balance == 500

    workbook_after_teardown(untouched, (
        "rows that someone else committed before the test were changed, deleted or dropped with their table: "
        "undo only what the test did, with `await transaction.rollback()`; never DELETE or DROP TABLE in a fixture"
    ))


@pytest.mark.exercise("03.1", promise="after_error")
@pytest.mark.asyncio
async def test_db_rolls_back_after_the_tests_sql_failed(observer, workbook_after_teardown, learner_db):
    _closed_afterwards(workbook_after_teardown, learner_db, graded=False)
    email = _email("before-the-error")
    await learner_db.execute("INSERT INTO users (name, email) VALUES ('written by the test', $1)", email)
    # A failing statement leaves the transaction aborted: only a rollback is accepted from now on.
    with pytest.raises(asyncpg.DivisionByZeroError):
        await learner_db.fetchval("SELECT 1 / 0")

    async def gone() -> bool:
        return await _count_or_zero(observer, "SELECT count(*) FROM users WHERE email = $1", email) == 0

    workbook_after_teardown(gone, (
        "after a test whose SQL failed, what it wrote before the error is still there: the teardown must "
        "roll back (`await transaction.rollback()` works on an aborted transaction, other queries do not)"
    ))


@pytest.mark.exercise("03.1", promise="closed")
@pytest.mark.asyncio
async def test_db_closes_the_connection_after_the_test(workbook_after_teardown, learner_db):
    require(_is_a_connection(learner_db), f"db must yield an asyncpg connection, not {learner_db!r}")
    _closed_afterwards(workbook_after_teardown, learner_db, graded=True)


# --- 03.2 UserRepository ---------------------------------------------------------------------------

@pytest.fixture
def users(db: asyncpg.Connection) -> object:
    return ex.UserRepository(db)


_USER_KEYS = {"id", "name", "email", "created_at"}


def _require_user_dict(value: object, method: str) -> None:
    require(type(value) is dict, (
        f"{method} must return a plain dict (`dict(row)`), not {type(value).__name__}"
    ))
    require(set(value) == _USER_KEYS, (  # type: ignore[arg-type]
        f"{method} must return a dict with exactly the keys id, name, email, created_at, not {sorted(value)}"  # type: ignore[arg-type]
    ))


async def _missing_user_id(db: asyncpg.Connection) -> int:
    """An id that no user has: one the sequence handed out, whose row is gone (never a guessed value)."""
    user_id = await db.fetchval("INSERT INTO users (name, email) VALUES ('gone', $1) RETURNING id", _email("gone"))
    await db.execute("DELETE FROM users WHERE id = $1", user_id)
    return user_id


async def _all_users(db: asyncpg.Connection) -> list[tuple[object, ...]]:
    return [tuple(row) for row in await db.fetch("SELECT id, name, email FROM users ORDER BY id")]


async def _not_broken(call: str, what: str, awaitable: object) -> object:
    """Await a call of the learner's; SQL that a quote broke fails with the rule, not a traceback."""
    try:
        return await awaitable  # type: ignore[misc]
    except (asyncpg.PostgresSyntaxError, asyncpg.UndefinedTableError) as error:
        pytest.fail(f"{call} broke the SQL ({type(error).__name__}: {error}): the {what} must be stored exactly as "
                    "given, quotes and all, so pass it as a $1, $2 parameter, never inside the SQL text",
                    pytrace=False)


@pytest.mark.exercise("03.2", promise=("create", "dicts"))
@pytest.mark.asyncio
async def test_users_create_returns_the_new_user_as_a_dict(users, db):
    email = _email("ann")
    user = await users.create("Ann", email)
    _require_user_dict(user, "create")
    require(isinstance(user["id"], int) and user["name"] == "Ann" and user["email"] == email, (
        f"create('Ann', {email!r}) returned {user!r}: it must return the new row's id, name and email"
    ))
    require(isinstance(user["created_at"], datetime.datetime), (
        "created_at must be the datetime the database filled in: `INSERT ... RETURNING id, name, email, created_at`"
    ))
    row = await db.fetchrow("SELECT name, email FROM users WHERE id = $1", user["id"])
    require(row is not None and (row["name"], row["email"]) == ("Ann", email), (
        "create must insert the user into the users table, under the id it returns"
    ))


@pytest.mark.exercise("03.2", promise=("read", "dicts"))
@pytest.mark.asyncio
async def test_users_get_and_find_by_email_return_dicts_or_none(users, db):
    email = _email("bob")
    created = await users.create("Bob", email)
    found = await users.get(created["id"])
    _require_user_dict(found, "get")
    require(found == created, f"get(id) must return the same user that create returned, got {found!r}")
    by_email = await users.find_by_email(email)
    _require_user_dict(by_email, "find_by_email")
    require(by_email == created, f"find_by_email must return the user with that email, got {by_email!r}")
    require(await users.get(await _missing_user_id(db)) is None, "get must return None when there is no user with that id")
    require(await users.find_by_email(_email("nobody")) is None,
             "find_by_email must return None when nobody has that email")


@pytest.mark.exercise("03.2", promise=("exact", "params"))
@pytest.mark.asyncio
async def test_users_find_by_email_is_not_fooled_by_sql_in_the_email(users):
    email = _email("cleo")
    await users.create("Cleo", email)  # so that there is a row to leak
    try:
        found = await users.find_by_email("' OR '1'='1")
    except asyncpg.PostgresSyntaxError as error:
        pytest.fail(f"find_by_email broke the SQL ({error}): pass the email as a $1 parameter", pytrace=False)
    require(found is None, (
        "find_by_email(\"' OR '1'='1\") found a user although nobody has that email: the email became part of "
        "the SQL (SQL injection). "
        "Pass it as a $1 parameter, never with an f-string"
    ))
    for other in (email.upper(), "%"):
        require(await users.find_by_email(other) is None, (
            f"find_by_email({other!r}) found a user whose email is {email!r}: it must match exactly the email it is "
            "given (`WHERE email = $1`, not ILIKE, LIKE or lower())"
        ))


@pytest.mark.exercise("03.2", promise=("duplicate", "usable"))
@pytest.mark.asyncio
async def test_users_create_with_a_taken_email_raises_duplicate_email(users, db):
    email = _email("dora")
    first = await users.create("Dora", email)
    try:
        await users.create("Another Dora", email)
    except ex.DuplicateEmail as error:
        require(error.email == email, "DuplicateEmail must carry the email: `raise DuplicateEmail(email)`")
    except asyncpg.UniqueViolationError:
        pytest.fail("create let asyncpg's UniqueViolationError out: catch it and `raise DuplicateEmail(email) "
                    "from error`, so callers need not know about the driver", pytrace=False)
    else:
        pytest.fail("create with an email that is already taken must raise DuplicateEmail", pytrace=False)
    try:
        again = await db.fetchrow("SELECT id, name, email, created_at FROM users WHERE id = $1", first["id"])
    except asyncpg.InFailedSQLTransactionError:
        pytest.fail("after DuplicateEmail the caller's transaction is aborted (\"current transaction is aborted\"), "
                    "so the connection is useless: put the INSERT inside `async with self.conn.transaction():`, "
                    "which is a savepoint inside the caller's transaction", pytrace=False)
    require(again is not None and dict(again) == first, "the user who had the email first must be unchanged")
    count = await db.fetchval("SELECT count(*) FROM users WHERE email = $1", email)
    require(count == 1, f"there must be exactly one user with the email, found {count}")


@pytest.mark.exercise("03.2", promise="rename")
@pytest.mark.asyncio
async def test_users_rename_changes_only_that_user(users, db):
    eve = await users.create("Eve", _email("eve"))
    fay = await users.create("Fay", _email("fay"))
    require(await users.rename(eve["id"], "Evelyn") is True, "rename of an existing user must return True")
    require(await db.fetchval("SELECT name FROM users WHERE id = $1", eve["id"]) == "Evelyn",
            "rename must change the user's name in the table")
    require(await db.fetchval("SELECT name FROM users WHERE id = $1", fay["id"]) == "Fay", (
        "rename changed another user's name too: the UPDATE needs `WHERE id = $1`"
    ))
    before = await _all_users(db)
    require(await users.rename(await _missing_user_id(db), "Nobody") is False, (
        "rename of a user that does not exist must return False: compare execute()'s status with \"UPDATE 1\""
    ))
    require(await _all_users(db) == before, "rename of a user that does not exist must change nothing in the table")


@pytest.mark.exercise("03.2", promise="delete")
@pytest.mark.asyncio
async def test_users_delete_removes_only_that_user(users, db):
    gus = await users.create("Gus", _email("gus"))
    hal = await users.create("Hal", _email("hal"))
    require(await users.delete(gus["id"]) is True, "delete of an existing user must return True")
    require(await db.fetchval("SELECT count(*) FROM users WHERE id = $1", gus["id"]) == 0, (
        "delete returned True but the user is still in the table: it must run `DELETE FROM users WHERE id = $1`"
    ))
    require(await db.fetchval("SELECT count(*) FROM users WHERE id = $1", hal["id"]) == 1,
            "delete removed another user too: it needs `WHERE id = $1`")
    before = await _all_users(db)
    require(await users.delete(gus["id"]) is False, (
        "delete of a user that does not exist (any more) must return False: compare execute()'s status with \"DELETE 1\""
    ))
    require(await _all_users(db) == before, "delete of a user that does not exist must change nothing in the table")


@pytest.mark.exercise("03.2", promise=("quotes", "params"))
@pytest.mark.asyncio
async def test_users_store_quotes_and_sql_as_plain_text(users, db):
    tricky = ("O'Brien", "x'); DROP TABLE users; --")
    for text in tricky:
        # In the name, then in the email: each argument of create must travel as a parameter.
        for name, email in ((text, _email("quoted")), ("Quinn", f"{text}-{secrets.token_hex(4)}@example.com")):
            which = "name" if name == text else "email"
            user = await _not_broken(f"create({name!r}, {email!r})", which, users.create(name, email))
            stored = await db.fetchrow("SELECT name, email FROM users WHERE id = $1", user["id"])
            require(stored is not None and (stored["name"], stored["email"]) == (name, email)
                    and (user["name"], user["email"]) == (name, email), (
                f"create must store the {which} {text!r} exactly as given: pass it as a parameter ($1, $2)"
            ))
            found = await _not_broken(f"find_by_email({email!r})", "email", users.find_by_email(email))
            require(found is not None and found["id"] == user["id"], (
                f"find_by_email({email!r}) must find the user who has exactly that email: pass it as a $1 parameter"
            ))
    kim = await users.create("Kim", _email("kim"))
    for name in tricky:
        renamed = await _not_broken(f"rename(id, {name!r})", "new name given to rename", users.rename(kim["id"], name))
        stored = await db.fetchval("SELECT name FROM users WHERE id = $1", kim["id"])
        require(renamed is True and stored == name, (
            f"rename must store the new name {name!r} exactly as given: pass it as a parameter ($1, $2)"
        ))


class _PastedId(int):
    """An id that prints as another number: SQL that pasted it in (f-string, str(), format) finds nobody."""

    def __str__(self) -> str:
        return "-1"

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return "-1"


@pytest.mark.exercise("03.2", promise=("ids", "params"))
@pytest.mark.asyncio
async def test_users_ids_travel_as_parameters(users, db):
    lee = await users.create("Lee", _email("lee"))
    rule = ("the id must travel as a $1 parameter, never pasted into the SQL text (`WHERE id = $1`, "
            "not an f-string), even though an int looks harmless there")
    user_id = _PastedId(lee["id"])
    found = await users.get(user_id)
    require(found is not None and found["name"] == "Lee", f"get(id) did not find the user: {rule}")
    require(await users.rename(user_id, "Leah") is True
            and await db.fetchval("SELECT name FROM users WHERE id = $1", lee["id"]) == "Leah",
            f"rename(id, name) did not rename the user: {rule}")
    require(await users.delete(user_id) is True
            and await db.fetchval("SELECT count(*) FROM users WHERE id = $1", lee["id"]) == 0,
            f"delete(id) did not delete the user: {rule}")


# --- 03.3 tests for AccountRepository, graded by mutation ------------------------------------------

# The learner's tests catch the exceptions of their own module (`pytest.raises(AccountNotFound)`),
# so the reference and the mutants must raise those very classes, not the reference module's copies.
for _name in ("AccountNotFound", "InsufficientFunds"):
    if isinstance(getattr(ex, _name, None), type):
        setattr(ref, _name, getattr(ex, _name))

class _OpenIgnoresBalance(ref.AccountRepository):
    async def open(self, owner, balance=0):
        return await self.conn.fetchval("INSERT INTO accounts (owner) VALUES ($1) RETURNING id", owner)


class _BalanceOfMissingIsZero(ref.AccountRepository):
    async def balance(self, account_id):
        balance = await self.conn.fetchval("SELECT balance FROM accounts WHERE id = $1", account_id)
        return 0 if balance is None else balance


class _DepositWithoutWhere(ref.AccountRepository):
    async def deposit(self, account_id, amount):
        if amount <= 0:
            raise ValueError(f"a deposit must be positive, not {amount}")
        await self.conn.execute("UPDATE accounts SET balance = balance + $1", amount)
        return await self.balance(account_id)


class _DepositReturnsOldBalance(ref.AccountRepository):
    async def deposit(self, account_id, amount):
        return await super().deposit(account_id, amount) - amount


class _DepositAcceptsZero(ref.AccountRepository):
    async def deposit(self, account_id, amount):
        if amount < 0:
            raise ValueError(f"a deposit must not be negative, not {amount}")
        balance = await self.conn.fetchval(
            "UPDATE accounts SET balance = balance + $2 WHERE id = $1 RETURNING balance", account_id, amount
        )
        if balance is None:
            raise ref.AccountNotFound(account_id)
        return balance


class _CloseAlwaysTrue(ref.AccountRepository):
    async def close(self, account_id):
        await self.conn.execute("DELETE FROM accounts WHERE id = $1", account_id)
        return True


class _CloseKeepsTheAccount(ref.AccountRepository):
    # Answers as if it deleted (True once, then False for that id) but leaves the row in place.
    async def close(self, account_id):
        closed = self.__dict__.setdefault("_closed", set())
        if account_id in closed:
            return False
        exists = await self.conn.fetchval("SELECT count(*) FROM accounts WHERE id = $1", account_id)
        closed.add(account_id)
        return exists == 1


class _Transfer(ref.AccountRepository):
    """The reference transfer, with the checks that the mutants below change as parameters."""

    refuses = staticmethod(lambda amount: amount <= 0)
    short = staticmethod(lambda left: left < 0)
    in_a_transaction = True
    credits = True

    async def transfer(self, source, target, amount):
        if self.refuses(amount):
            raise ValueError(f"a transfer must be positive, not {amount}")
        block = self.conn.transaction() if self.in_a_transaction else contextlib.AsyncExitStack()
        async with block:
            left = await self.conn.fetchval(
                "UPDATE accounts SET balance = balance - $2 WHERE id = $1 RETURNING balance", source, amount
            )
            if left is None:
                raise ref.AccountNotFound(source)
            if self.short(left):
                raise ref.InsufficientFunds(f"account {source} holds {left + amount}, cannot send {amount}")
            sql = ("UPDATE accounts SET balance = balance + $2 WHERE id = $1 RETURNING id" if self.credits
                   else "SELECT id FROM accounts WHERE id = $1 AND $2::int IS NOT NULL")
            if await self.conn.fetchval(sql, target, amount) is None:
                raise ref.AccountNotFound(target)


class _TransferNeverCredits(_Transfer):
    credits = False


class _TransferAllowsOverdraft(_Transfer):
    short = staticmethod(lambda left: False)


class _TransferRefusesWholeBalance(_Transfer):
    short = staticmethod(lambda left: left <= 0)


class _TransferAcceptsNegative(_Transfer):
    refuses = staticmethod(lambda amount: False)


class _TransferCommitsHalf(_Transfer):
    # No transaction: the debit stays when a later step raises.
    in_a_transaction = False


globals().update(
    mutation_suite(
        ex,
        "03.3",
        reference=ref.AccountRepository,
        mutants={
            "open_ignores_balance": _OpenIgnoresBalance,
            "balance_of_missing_is_zero": _BalanceOfMissingIsZero,
            "deposit_without_where": _DepositWithoutWhere,
            "deposit_returns_old_balance": _DepositReturnsOldBalance,
            "deposit_accepts_zero": _DepositAcceptsZero,
            "close_always_true": _CloseAlwaysTrue,
            "close_keeps_the_account": _CloseKeepsTheAccount,
            "transfer_never_credits": _TransferNeverCredits,
            "transfer_allows_overdraft": _TransferAllowsOverdraft,
            "transfer_refuses_whole_balance": _TransferRefusesWholeBalance,
            "transfer_accepts_negative": _TransferAcceptsNegative,
            "transfer_commits_half": _TransferCommitsHalf,
        },
    )
)
