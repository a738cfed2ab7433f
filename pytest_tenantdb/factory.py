"""The session's factory of migration sets and template caches (like pytest's TempPathFactory):
each migration set is loaded once and each template built once per run, whatever fixtures and
check items ask for them. It knows nothing of pytest; ``plugin.py`` makes one per session."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_tenantdb.fleet.templates import TemplateCache
    from pytest_tenantdb.migrations import MigrationSet
    from pytest_tenantdb.settings import Settings


def load_migrations(settings: Settings, path: Path | None = None) -> MigrationSet:
    """The migration set of ``path`` (default: the settings'), with the settings' base and
    Django settings module (Django reads it from the environment, as pytest-django sets it)."""
    from pytest_tenantdb.migrations import MigrationSet

    if settings.django_settings:
        os.environ["DJANGO_SETTINGS_MODULE"] = settings.django_settings
    return MigrationSet.from_path(path or settings.migrations, base=settings.base or None, root=settings.root)


class TenantDBFactory:
    """Session-wide: loads migration sets and template caches once. ``cache_dir`` keeps built
    templates between runs (pytest's cache); ``scratch_dir`` is this run's own."""

    def __init__(self, settings: Settings, cache_dir: Path, scratch_dir: Path) -> None:
        self.settings = settings
        self.cache_dir = cache_dir
        self.scratch_dir = scratch_dir
        self._sets: dict[Path, MigrationSet] = {}
        self._caches: dict[tuple[Path, str], TemplateCache] = {}

    @property
    def root(self) -> Path:
        return self.settings.root

    def migrations(self, path: Path) -> MigrationSet:
        path = path.resolve()
        if path not in self._sets:
            self._sets[path] = load_migrations(self.settings, path)
        return self._sets[path]

    def templates(self, settings: Settings) -> TemplateCache:
        from pytest_tenantdb.fleet.templates import TemplateCache
        from pytest_tenantdb.versioning import version_store

        key = (settings.migrations.resolve(), settings.versioning)
        if key not in self._caches:
            migrations = self.migrations(settings.migrations)
            self._caches[key] = TemplateCache(
                self.cache_dir,
                migrations,
                version_store(settings.versioning, migrations),
                scratch=self.scratch_dir,
            )
        return self._caches[key]
