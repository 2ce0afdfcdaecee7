"""Chapter 03: testing database code with asyncpg: CRUD, transactions, isolation.

Read notebooks/03_asyncpg.ipynb first. Edit only the parts marked TODO, then run
`python3 -m workbook grade 03`. Stuck? `python3 -m workbook hint 03.1`.

Everything here runs against a real PostgreSQL. The grading plugin gives you the fixture
`workbook_database_url`: the URL of a database created for this grading run alone. The finished
fixture `bank_database_url` below creates the tables `users` and `accounts` in it, in a schema
of their own; nothing you do there can harm anyone else's data.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio

#: The tables of this chapter (`IF NOT EXISTS`: running it again changes nothing).
SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id serial PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS accounts (
    id serial PRIMARY KEY,
    owner text NOT NULL,
    balance integer NOT NULL DEFAULT 0
);
"""


# --- A finished fixture: the tables, created once per test module ------------------------------

def _with_search_path(url: str, schema: str) -> str:
    """`url` plus `search_path=<schema>`: asyncpg sends query parameters it does not know to the server as settings."""
    parts = urlsplit(url)
    query = urlencode([*parse_qsl(parts.query), ("search_path", schema)])
    return urlunsplit(parts._replace(query=query))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bank_database_url(workbook_database_url: str) -> AsyncIterator[str]:
    """A URL of the grading run's own database whose connections find the tables `users` and `accounts`.

    This one is finished: do not change it. Your `db` fixture (03.1) requests it by its name and
    connects with `asyncpg.connect(bank_database_url)`.

    The tables live in a PostgreSQL schema of this module's own (`bank_` plus a random part), and
    the URL sets `search_path` to it, so `SELECT * FROM users` means this module's `users`. At the
    end the fixture drops that schema, which it created itself, so no other `users` table in the
    same database is ever touched.

    `scope="module"`: the tables are created once for all the tests of a module, not before each
    test (creating and dropping tables is slow, and per-test isolation comes from `db`'s transaction).
    `loop_scope="module"`: a fixture that outlives one test needs an event loop that lives as long
    as it does (chapter 01). It yields only a string, so tests on their own loops can use it.
    """
    schema = f"bank_{secrets.token_hex(4)}"
    connection = await asyncpg.connect(workbook_database_url)
    try:
        await connection.execute(f"CREATE SCHEMA {schema}")
        await connection.execute(f"SET search_path TO {schema}")
        await connection.execute(SCHEMA)
        yield _with_search_path(workbook_database_url, schema)
    finally:
        # No IF EXISTS: we created it, so it must be there. CASCADE drops the tables in it.
        await connection.execute(f"DROP SCHEMA {schema} CASCADE")
        await connection.close()


# --- 03.1 (fixture): a connection whose every change is rolled back ---------------------------

@pytest_asyncio.fixture
async def db(bank_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """Yield an asyncpg connection to `bank_database_url`, inside a transaction that is rolled back after the test.

    Connect with `asyncpg.connect(bank_database_url)`, start a transaction by hand
    (`transaction = connection.transaction()`, then `await transaction.start()`) and yield the
    connection. After the test, roll the transaction back (`await transaction.rollback()`) and
    close the connection. Never commit, never DELETE or DROP: the rollback undoes exactly what the
    test did, and nothing else.

    The grading tests check that:
    - the test gets an open connection to the database `bank_database_url` names (the tables
      `users` and `accounts` are there), already inside a transaction;
    - rows the test writes are invisible to other connections during the test;
    - rows the test writes are gone after the test: rolled back, never committed;
    - rows that someone else committed before the test are still there, unchanged, after it,
      even if the test updated or deleted them;
    - a test whose SQL failed (which leaves the transaction aborted) is rolled back all the same;
    - after the test the connection is closed.
    """
    # TODO(03.1): your code here. Stuck? Run `python3 -m workbook hint 03.1`.
    raise NotImplementedError


# --- 03.2 (implement): a repository of users ---------------------------------------------------

class DuplicateEmail(Exception):
    """A user with this email already exists (the domain's error, not the driver's)."""

    def __init__(self, email: str) -> None:
        super().__init__(f"a user with the email {email!r} already exists")
        self.email = email


class UserRepository:
    """Users in the `users` table: create, read, update, delete, on the connection it is given.

    Every method takes its values as query parameters (`$1`, `$2`), never pasted into the SQL text,
    and returns plain dicts (never asyncpg Records) with the keys id, name, email, created_at.

    The grading tests check that:
    - `create` returns a dict (type dict, not a Record) with those four keys: id (int), name,
      email, created_at (a datetime filled in by the database), and the row is in the table;
    - `get` and `find_by_email` return the user as a dict, or None when there is no such user;
    - names and emails that contain quotes or SQL ("O'Brien", "x'); DROP TABLE users; --") are
      stored exactly as given, by `create` and by `rename`, and `find_by_email` finds them;
    - `find_by_email("' OR '1'='1")` finds nobody, and so does the email in other capitals:
      it matches exactly the email it is given;
    - ids travel as parameters too: `get`, `rename` and `delete` never paste an id into the SQL
      text, even though an int looks harmless there;
    - `create` with an email that is already used raises `DuplicateEmail` (with `.email` set),
      not asyncpg's `UniqueViolationError`, and the existing user is unchanged;
    - after `DuplicateEmail` the connection is still usable, even inside a transaction that the
      caller started;
    - `rename` changes the name of only the user it is given and returns True, or returns False
      (changing nothing) when there is no such user;
    - `delete` removes only the user it is given from the table and returns True, or returns
      False (changing nothing) when there is no such user.
    """

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def create(self, name: str, email: str) -> dict[str, Any]:
        """Insert a user; return it as a dict. Raise DuplicateEmail if the email is taken."""
        # TODO(03.2): your code here. Stuck? Run `python3 -m workbook hint 03.2`.
        raise NotImplementedError

    async def get(self, user_id: int) -> dict[str, Any] | None:
        """The user with this id as a dict, or None."""
        # TODO(03.2): your code here. Stuck? Run `python3 -m workbook hint 03.2`.
        raise NotImplementedError

    async def find_by_email(self, email: str) -> dict[str, Any] | None:
        """The user with exactly this email as a dict, or None."""
        # TODO(03.2): your code here. Stuck? Run `python3 -m workbook hint 03.2`.
        raise NotImplementedError

    async def rename(self, user_id: int, name: str) -> bool:
        """Give the user a new name; True if there was such a user, False if not."""
        # TODO(03.2): your code here. Stuck? Run `python3 -m workbook hint 03.2`.
        raise NotImplementedError

    async def delete(self, user_id: int) -> bool:
        """Delete the user; True if there was such a user, False if not."""
        # TODO(03.2): your code here. Stuck? Run `python3 -m workbook hint 03.2`.
        raise NotImplementedError


# --- 03.3 (test): tests for a bank's accounts, graded by mutation -------------------------------

class AccountNotFound(Exception):
    """There is no account with this id."""

    def __init__(self, account_id: int) -> None:
        super().__init__(f"no account with id {account_id}")
        self.account_id = account_id


class InsufficientFunds(Exception):
    """The source account of a transfer does not hold enough money."""


class AccountRepository:
    """Bank accounts in the `accounts` table. Amounts are whole cents (int).

    This one is finished: do not change it. Write tests for it below.
    """

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def open(self, owner: str, balance: int = 0) -> int:
        """Open an account with a starting balance; return its id."""
        return await self.conn.fetchval(
            "INSERT INTO accounts (owner, balance) VALUES ($1, $2) RETURNING id", owner, balance
        )

    async def balance(self, account_id: int) -> int:
        """The account's balance. Raises AccountNotFound if there is no such account."""
        balance = await self.conn.fetchval("SELECT balance FROM accounts WHERE id = $1", account_id)
        if balance is None:
            raise AccountNotFound(account_id)
        return balance

    async def deposit(self, account_id: int, amount: int) -> int:
        """Add `amount` (> 0) to this account, and only this one; return its new balance.

        Raises ValueError if amount <= 0, AccountNotFound if there is no such account.
        """
        if amount <= 0:
            raise ValueError(f"a deposit must be positive, not {amount}")
        balance = await self.conn.fetchval(
            "UPDATE accounts SET balance = balance + $2 WHERE id = $1 RETURNING balance", account_id, amount
        )
        if balance is None:
            raise AccountNotFound(account_id)
        return balance

    async def close(self, account_id: int) -> bool:
        """Delete the account; True if it existed, False if there was no such account."""
        status = await self.conn.execute("DELETE FROM accounts WHERE id = $1", account_id)
        return status == "DELETE 1"

    async def transfer(self, source: int, target: int, amount: int) -> None:
        """Move `amount` (> 0) from `source` to `target`: all or nothing.

        Raises ValueError if amount <= 0, AccountNotFound if either account does not exist,
        InsufficientFunds if `source` holds less than `amount`. When it raises, no balance has changed.
        """
        if amount <= 0:
            raise ValueError(f"a transfer must be positive, not {amount}")
        # One transaction (a savepoint, if the caller already has one): an exception anywhere
        # inside the block rolls back the debit too. Without it, the debit below would stay
        # when the credit fails: money would vanish.
        async with self.conn.transaction():
            left = await self.conn.fetchval(
                "UPDATE accounts SET balance = balance - $2 WHERE id = $1 RETURNING balance", source, amount
            )
            if left is None:
                raise AccountNotFound(source)
            if left < 0:
                raise InsufficientFunds(f"account {source} holds {left + amount}, cannot send {amount}")
            credited = await self.conn.fetchval(
                "UPDATE accounts SET balance = balance + $2 WHERE id = $1 RETURNING id", target, amount
            )
            if credited is None:
                raise AccountNotFound(target)


@pytest.fixture
def accounts(db: asyncpg.Connection) -> AccountRepository:
    """An AccountRepository on `db`, the test's own transaction (03.1): everything a test does is rolled back.

    Finished: do not change it. Grading runs your tests with a correct `db` of its own, so 03.3
    can be solved before 03.1. To run them yourself once 03.1 is done:
    `python3 -m workbook pytest exercises/03_asyncpg.py`
    """
    return AccountRepository(db)


# Your tests: functions named test_accounts_..., marked for pytest-asyncio, that use the
# `accounts` fixture above. Grading runs them against the code above (they must pass) and against
# broken copies of it (at least one test must fail on each). Create every account a test needs in
# that test: the accounts table may hold other rows, and your test must not depend on them.

@pytest.mark.asyncio
async def test_accounts_deposit_adds_to_the_balance(accounts):
    # TODO(03.3): open an account, deposit into it, assert on its balance
    raise NotImplementedError
