"""A migrated, empty MLflow sqlite store for each test that tracks. MLflow builds a new sqlite store by running
its schema migrations, about 2 CPU-s each time, and the suite makes some 25 stores (one per test's tracking URI,
one per `mlflow server`). Here MLflow builds one store per test process and every test gets a byte copy of it:
the same schema, an empty registry. Where a user meets the first-run path (MLflow creating the store itself), it
stays tested: the README's and the command line's embedded default (test_readme, test_cli)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

_template: Path | None = None


def _built_template() -> Path:
    global _template
    if _template is None:
        import logging

        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
        directory = Path(tempfile.mkdtemp(prefix="ganstream-mlflow-template-"))
        db = directory / "template.db"
        loggers = [logging.getLogger(name) for name in ("mlflow", "alembic")]
        levels = [log.level for log in loggers]
        for log in loggers:  # its "Creating initial MLflow database tables" lines would land in a test's stderr
            log.setLevel(logging.WARNING)
        try:
            SqlAlchemyStore(f"sqlite:///{db}", str(directory / "artifacts")).engine.dispose()
        finally:
            for log, level in zip(loggers, levels):
                log.setLevel(level)
        _template = db
    return _template


def fresh_store(path: Path) -> Path:
    """Put an empty migrated store at `path` (unless one is there already) and return the path."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_built_template(), path)
    return path


def sqlite_uri(path: Path) -> str:
    """`sqlite:///PATH` of an empty migrated store at `path`."""
    return f"sqlite:///{fresh_store(path)}"
