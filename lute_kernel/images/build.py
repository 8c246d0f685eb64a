"""Building images: parents first, content-addressed, skipped when unchanged, never half-written.

Owns the build procedure of ``lute-kernel images build``: render every requested recipe (and its
parents) and compute its address before anything runs, then for each image in order either skip it
(same address, SIF unchanged: no hashing, well under a second), adopt a SIF another clone left in
the cache (link it), or build it with ``apptainer build`` into a temporary file next to its place in
the cache, under a per-image lock, and rename it into place. A failed build removes its temporary
file and leaves the previous SIF, link and manifest entry as they were. Spawning goes through
``apptainer_build.run_build_command`` (the seam); this module decides, it never spawns itself.
"""

from __future__ import annotations

import datetime
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from lute_kernel.images import apptainer_build
from lute_kernel.images.address import content_address, file_sha256, resolve_sources
from lute_kernel.images.apptainer_build import ImageBuildError, OutputSink, build_argv, terminal_output
from lute_kernel.images.build_steps import BuildSteps, StepSink, print_step
from lute_kernel.images.locking import exclusive_lock, replace_symlink, write_atomically
from lute_kernel.images.manifest import ImageRecord, ManifestError, read_manifest, read_sidecar, record_image
from lute_kernel.images.manifest import write_sidecar as store_sidecar
from lute_kernel.images.paths import ImagePaths, image_paths
from lute_kernel.images.recipes import Recipe, RecipeBook, check_site, load_recipes
from lute_kernel.images.render import check_definition, render_context, render_recipe
from lute_kernel.images.sandbox import unpack_for_site
from lute_kernel.sites import SiteProfile

StatusSink = Callable[[str], None]
PARENT_PLACEHOLDER = "{{ parent_sif }}"


def print_status(text: str) -> None:
    """Print one status line of the builder."""
    print(text, flush=True)


@dataclass(frozen=True)
class PreparedImage:
    """One image ready to build: its rendered definition, address and cached SIF path."""

    recipe: Recipe
    definition: str
    address: str
    parent_address: Optional[str]
    sources: List[Path]
    cached_sif: Path

    @property
    def name(self) -> str:
        """The image's name."""
        return self.recipe.name


@dataclass(frozen=True)
class BuildOutcome:
    """What happened to one image: ``skipped`` (up to date), ``linked`` (from the cache) or ``built``."""

    name: str
    action: str
    record: ImageRecord
    seconds: float


def prepare_images(order: Sequence[Recipe], site: SiteProfile, paths: ImagePaths) -> Dict[str, PreparedImage]:
    """Render each recipe of ``order`` (parents first) and compute its content address."""
    prepared: Dict[str, PreparedImage] = {}
    for recipe in order:
        parent = prepared[recipe.parent] if recipe.parent is not None else None
        parent_sif = parent.cached_sif if parent is not None else None
        text = render_recipe(recipe, render_context(recipe, site, parent_sif))
        definition = check_definition(text, recipe)  # parsed by spython: sections, %files, labels
        sources = resolve_sources(definition.sources, recipe.path.parent, str(recipe.path))
        # The parent's path holds this machine's cache folder; its address stands for it instead.
        hashed = text.replace(str(parent_sif), PARENT_PLACEHOLDER) if parent_sif is not None else text
        parent_address = parent.address if parent is not None else None
        address = content_address(hashed, parent_address, sources)
        prepared[recipe.name] = PreparedImage(
            recipe=recipe,
            definition=text,
            address=address,
            parent_address=parent_address,
            sources=sources,
            cached_sif=paths.cached_sif(recipe.name, address),
        )
    return prepared


def plan_builds(book: RecipeBook, names: Sequence[str], site: SiteProfile) -> List[Recipe]:
    """Return the recipes to build, parents first; fail fast for unknown or site-restricted images."""
    for name in names:
        book.get(name)
    order = book.build_order(names or book.buildable_at(site.name))
    check_site(order, site.name)
    return order


@dataclass
class _Builder:
    paths: ImagePaths
    site: SiteProfile
    output: OutputSink
    status: StatusSink
    on_step: StepSink = print_step
    _version: Optional[str] = field(default=None)

    def apptainer_version(self) -> str:
        if self._version is None:
            self._version = apptainer_build.apptainer_version(self.site.apptainer.binary)
        return self._version

    def ensure(self, image: PreparedImage, *, forced: bool) -> BuildOutcome:
        start = time.monotonic()
        if not forced and (record := self.current_record(image)) is not None:
            return BuildOutcome(image.name, "skipped", record, time.monotonic() - start)
        lock = self.paths.lock_file(image.name)
        with exclusive_lock(lock, on_wait=lambda: self.status(f"==> {image.name}: waiting for another build ({lock})")):
            if not forced:
                if (record := self.current_record(image)) is not None:  # built meanwhile by the lock's holder
                    return BuildOutcome(image.name, "skipped", record, time.monotonic() - start)
                if (record := self.adopt_cached(image)) is not None:
                    return BuildOutcome(image.name, "linked", record, time.monotonic() - start)
            record = self.build(image)
            return BuildOutcome(image.name, "built", record, time.monotonic() - start)

    def current_record(self, image: PreparedImage) -> Optional[ImageRecord]:
        """Return the manifest's record if it is this address, its SIF unchanged and the link in place."""
        try:
            record = read_manifest(self.paths.manifest).get(image.name)
        except ManifestError:
            return None
        if record is None or record.address != image.address or record.sif != str(image.cached_sif):
            return None
        link = self.paths.link(image.name)
        if not record.sif_unchanged() or not link.is_symlink() or Path(os.readlink(link)) != image.cached_sif:
            return None
        return record

    def adopt_cached(self, image: PreparedImage) -> Optional[ImageRecord]:
        """Link a SIF of this address that is already in the cache (built by another clone or earlier)."""
        sif = image.cached_sif
        if not sif.is_file():
            return None
        stat = sif.stat()
        known = read_sidecar(sif)
        if known is not None and (known.size, known.mtime_ns) != (stat.st_size, stat.st_mtime_ns):
            self.status(f"==> {image.name}: cached {sif} differs from its record; building it again")
            return None
        if known is None:  # a SIF without its record (copied by hand?): hash it once
            self.status(f"==> {image.name}: hashing cached {sif}")
            known = ImageRecord(
                name=image.name,
                recipe=str(image.recipe.path),
                address=image.address,
                parent=image.recipe.parent,
                parent_address=image.parent_address,
                sif=str(sif),
                sha256=file_sha256(sif),
                size=stat.st_size,
                mtime_ns=stat.st_mtime_ns,
                apptainer_version="unknown",
                built_at=_iso(stat.st_mtime),
                build_seconds=0.0,
                site=self.site.name,
                mpi=image.recipe.meta.mpi,
            )
            store_sidecar(known)
        # The record may come from another clone, or from this cache under another path. The same
        # address means the same rendered labels, so the recipe's MPI is the SIF's.
        update = {"recipe": str(image.recipe.path), "address": image.address, "sif": str(sif)}
        record = known.model_copy(update={**update, "mpi": image.recipe.meta.mpi})
        self.publish(image, record)
        self.status(f"==> {image.name}: using cached {sif} (built {record.built_at})")
        return record

    def build(self, image: PreparedImage) -> ImageRecord:
        """Run ``apptainer build`` into a temporary file, then rename it into the cache."""
        name, sif = image.name, image.cached_sif
        sif.parent.mkdir(parents=True, exist_ok=True)
        for stale in sif.parent.glob(f".{name}-*.sif.tmp-*"):  # left by a killed build (we hold the lock)
            stale.unlink()
        definition = self.paths.logs_dir / f"{name}.def"
        log = self.paths.logs_dir / f"{name}.log"
        write_atomically(definition, image.definition)
        version = self.apptainer_version()
        parent = f" on {image.recipe.parent}" if image.recipe.parent else ""
        self.status(f"==> {name}: building{parent} from {image.recipe.path} [{image.address[:16]}] with {version}")
        self.status(f"    log {log}, definition {definition}")
        settings = self.site.images
        tmp = sif.with_name(f".{sif.name}.tmp-{os.getpid()}")
        argv = build_argv(
            self.site.apptainer.binary,
            tmp,
            definition,
            fakeroot=settings.fakeroot,
            compression=settings.compression,
            extra=settings.build_args,
            squash_args=image.recipe.meta.mksquashfs_args,
        )
        env = dict(os.environ)
        if settings.build_tmpdir:
            Path(settings.build_tmpdir).mkdir(parents=True, exist_ok=True)
            env["APPTAINER_TMPDIR"] = settings.build_tmpdir
        start = time.monotonic()
        steps = BuildSteps(name, self.on_step)

        def output(chunk: bytes) -> None:
            steps.feed(chunk)
            self.output(chunk)

        try:
            try:
                code = apptainer_build.run_build_command(
                    argv, cwd=image.recipe.path.parent, log_path=log, env=env, output=output
                )
            finally:
                steps.finish()
            if code != 0 or not tmp.is_file():
                raise ImageBuildError(self.failure_message(name, code, log))
            sha256 = file_sha256(tmp)
            os.replace(tmp, sif)
        finally:
            if tmp.exists():
                tmp.unlink()
        seconds = time.monotonic() - start
        stat = sif.stat()
        record = ImageRecord(
            name=name,
            recipe=str(image.recipe.path),
            address=image.address,
            parent=image.recipe.parent,
            parent_address=image.parent_address,
            sif=str(sif),
            sha256=sha256,
            size=stat.st_size,
            mtime_ns=stat.st_mtime_ns,
            apptainer_version=version,
            built_at=_iso(time.time()),
            build_seconds=round(seconds, 1),
            site=self.site.name,
            mpi=image.recipe.meta.mpi,
        )
        store_sidecar(record)
        self.publish(image, record)
        self.status(f"==> {name}: built in {seconds:.0f} s: {sif} ({_size(stat.st_size)}, sha256 {sha256[:12]})")
        return record

    def publish(self, image: PreparedImage, record: ImageRecord) -> None:
        """Point ``images/<name>.sif`` at the cached SIF and record it in the manifest."""
        replace_symlink(self.paths.link(image.name), image.cached_sif)
        record_image(self.paths, record)

    def failure_message(self, name: str, code: int, log: Path) -> str:
        link = self.paths.link(name)
        kept = f"; the previous image is kept ({link} -> {os.readlink(link)})" if link.is_symlink() else ""
        tail = log.read_text(errors="replace").splitlines()[-8:] if log.is_file() else []
        last = "\n    ".join(["", *tail]) if tail else ""
        return f"building image {name!r} failed (apptainer exit {code}); full log {log}{kept}. Last lines:{last}"


def build_images(
    names: Sequence[str],
    site: SiteProfile,
    *,
    force: bool = False,
    paths: Optional[ImagePaths] = None,
    output: OutputSink = terminal_output,
    status: StatusSink = print_status,
    on_step: StepSink = print_step,
) -> List[BuildOutcome]:
    """Build ``names`` (none: every image the site can build), parents first.

    Args:
        names: Images to build; their parents are brought up to date first.
        site: The site profile (its ``images:`` settings and name).
        force: Rebuild the named images (all, if none are named) even when up to date.
        paths: Recipes, images and cache folders (default: from the environment and the site).
        output: Where the live build output goes (raw bytes).
        status: Where the builder's own status lines go.
        on_step: Told each build step (apptainer's ``INFO:`` lines) with the seconds since its build began.

    Raises:
        InputError: Unknown image, site-restricted image, bad recipe: before anything is built.
        ImageBuildError: ``apptainer build`` failed; earlier images of the run stay built.
    """
    paths = paths or image_paths(site)
    book = load_recipes(paths.recipes_dir)
    order = plan_builds(book, list(names), site)
    prepared = prepare_images(order, site, paths)
    if not names:
        left_out = sorted(set(book.recipes) - {r.name for r in order})
        for name in left_out:
            status(f"==> {name}: not built here ({book.recipes[name].restriction()}; this is site {site.name!r})")
    builder = _Builder(paths=paths, site=site, output=output, status=status, on_step=on_step)
    outcomes = []
    for recipe in order:
        forced = force and (not names or recipe.name in names)
        outcome = builder.ensure(prepared[recipe.name], forced=forced)
        if outcome.action == "skipped":
            status(f"==> {recipe.name}: up to date ({outcome.record.sif}, {outcome.seconds * 1000:.0f} ms)")
        if site.images.run_from == "sandbox":
            unpack_for_site(outcome.record, site, paths.logs_dir / f"{recipe.name}.unpack.log", output, status)
        outcomes.append(outcome)
    return outcomes


def _iso(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc).isoformat(timespec="seconds")


def _size(size: int) -> str:
    return f"{size / 1e6:.0f} MB" if size < 1e9 else f"{size / 1e9:.2f} GB"
