"""Shared repository mechanics: fetch by id with an owner filter, cursor pagination by `pk`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from sqlalchemy import ColumnElement, Connection
from sqlmodel import Session, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

Row = TypeVar("Row", bound=SQLModel)
Order = Literal["asc", "desc"]


@dataclass(frozen=True)
class Page(Generic[Row]):
    rows: list[Row]
    has_more: bool


@dataclass(frozen=True)
class PageQuery:
    limit: int = 20
    order: Order = "desc"
    after: str | None = None
    before: str | None = None


def fetch_one(connection: Connection, model: type[Row], *where: Any, options: tuple[Any, ...] = ()) -> Row | None:
    """One row as a model instance (detached, as rows of a closed session are), read on a thread's connection
    (`Database.read_in_thread`): the hot reads' one-hop path."""
    with Session(bind=connection) as db:
        return db.exec(select(model).where(*where).options(*options)).first()


class Repository(Generic[Row]):
    """One table; subclasses set `model`. Rows are filtered by owner in the query itself."""

    model: type[Row]

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    def _col(self, name: str) -> Any:
        return getattr(self.model, name)

    async def get(self, id: str, *, filters: list[ColumnElement[bool]] | None = None,
                  options: tuple[Any, ...] = ()) -> Row | None:
        statement = select(self.model).where(self._col("id") == id, *(filters or [])).options(*options)
        return (await self.db.exec(statement)).first()

    async def add(self, row: Row) -> Row:
        self.db.add(row)
        await self.db.flush()
        return row

    async def delete(self, row: Row) -> None:
        await self.db.delete(row)
        await self.db.flush()

    async def paginate(self, page: PageQuery, *, filters: list[ColumnElement[bool]],
                       columns: list[Any] | None = None, options: tuple[Any, ...] = ()) -> Page[Any]:
        """Cursor pagination over `pk`; `after`/`before` are ids in the listing's own order. With `columns`,
        rows are tuples of those columns instead of model instances."""
        pk = self._col("pk")
        statement = (select(*columns) if columns else select(self.model).options(*options)).where(*filters)
        for cursor, forward in ((page.after, True), (page.before, False)):
            if cursor is None:
                continue
            cursor_pk = await self._pk_of(cursor, filters)
            if cursor_pk is None:
                return Page(rows=[], has_more=False)
            ascending_after = (page.order == "asc") == forward
            statement = statement.where(pk > cursor_pk if ascending_after else pk < cursor_pk)
        reverse = page.before is not None and page.after is None
        descending = (page.order == "desc") != reverse
        statement = statement.order_by(pk.desc() if descending else pk.asc()).limit(page.limit + 1)
        rows = list((await self.db.exec(statement)).all())
        has_more = len(rows) > page.limit
        rows = rows[: page.limit]
        if reverse:
            rows.reverse()
        return Page(rows=rows, has_more=has_more)

    async def _pk_of(self, id: str, filters: list[ColumnElement[bool]]) -> int | None:
        statement = select(self._col("pk")).where(self._col("id") == id, *filters)
        return (await self.db.exec(statement)).first()
