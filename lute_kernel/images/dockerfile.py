"""Reading a tool's published Dockerfile with spython's DockerParser, into the parts of a recipe.

Owns what each Dockerfile instruction becomes (``lute-kernel images import``): ``FROM`` the parent
image (Docker Hub is not reachable from every site: the recipe starts from our image instead, and
the FROM line stays as a comment), ``RUN`` lines ``%post``, ``ENV`` ``%environment`` (and exports in
``%post``, where later RUN lines see them, as in Docker), ``ARG`` with a default an export in
``%post``, ``COPY``/``ADD`` of build-context files ``%files`` (local archives are unpacked in
``%post`` as Docker does, URLs downloaded with curl), ``LABEL``/``MAINTAINER`` ``%labels``,
``WORKDIR`` a folder made in ``%post``, ``CMD``/``ENTRYPOINT`` ``%runscript``. What has no meaning
for an image Tasks run in (``USER``, ``EXPOSE``, ``VOLUME``, ``HEALTHCHECK``, ``SHELL``,
``STOPSIGNAL``, ``ONBUILD``) is dropped with a note; what cannot be converted faithfully
(multi-stage builds, ``COPY --from``, an ``ARG`` without a default, BuildKit heredocs) is refused
naming the line. spython's own fixes are in the parser subclass: its ``tar -zvf`` for archives,
its comment lines inside a continued RUN (a shell comment there would end the command), its
one-string labels. Must not write files: ``images.importing`` does.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any, List, Optional, Tuple

IGNORED = {
    "USER": "Apptainer builds run %post as root and Tasks run as the user who starts them",
    "EXPOSE": "a Task's image serves no ports",
    "VOLUME": "the kernel binds the work_dir and the site's data paths",
    "HEALTHCHECK": "a probe of a running service; %test checks the image at build time",
    "SHELL": "%post runs /bin/sh",
    "STOPSIGNAL": "the kernel stops Tasks with SIGTERM, then SIGKILL",
    "ONBUILD": "no image is built FROM this one by Docker",
}
_HEREDOC = re.compile(r"<<-?\s*['\"]?[A-Za-z_][A-Za-z0-9_]*['\"]?")


class DockerfileRefused(ValueError):
    """The Dockerfile uses something that cannot be converted faithfully (the message names it)."""


@dataclass
class DockerRecipe:
    """What a Dockerfile declares, converted to recipe sections (lists of lines, unindented)."""

    base: str
    files: List[Tuple[str, str]]
    post: List[str]
    environment: List[str]
    labels: List[Tuple[str, str]]
    runscript: Optional[str]
    notes: List[str] = field(default_factory=list)


def _parser(lines: List[str]) -> Any:
    from spython.main.parse.parsers.docker import DockerParser

    class ConvertingParser(DockerParser):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(filename=None, load=False)
            self.lines = lines
            self.froms: List[str] = []
            self.notes: List[str] = []
            self.refused: List[str] = []
            self.needs_curl = False

        def _from(self, line: str) -> None:
            image = self._setup("FROM", line)[0]
            self.froms.append(image)
            if len(self.froms) > 1:
                self.refused.append(f"a second FROM ({image}): multi-stage builds are not converted")
                return
            base = re.sub(r"\s+AS\s+.+$", "", image, flags=re.I)
            self.recipe[self.active_layer].fromHeader = self._replace_from_dict(base, self.args)

        def _run(self, line: str) -> None:
            if line.strip().startswith("#"):  # Docker drops comments inside a continued RUN; sh would not
                return
            if _HEREDOC.search(line):
                self.refused.append(f"a heredoc ({line.strip()[:60]}): write its lines as RUN lines")
            super()._run(line)

        def _env(self, line: str) -> None:
            environ = self.parse_env(self._setup("ENV", line))
            self.recipe[self.active_layer].install += [f"export {pair}" for pair in environ]
            self.recipe[self.active_layer].environ += environ

        def _arg(self, line: str) -> None:
            for arg in self._setup("ARG", line):
                for word in arg.split():
                    name, eq, value = word.partition("=")
                    if not eq:
                        self.refused.append(f"ARG {name} has no default: give it one (ARG {name}=...)")
                        continue
                    self.args[name] = value
                    self.recipe[self.active_layer].install.append(f"export {name}={value}")

        def _label(self, line: str) -> None:
            text = self._setup("MAINTAINER" if line.lstrip().upper().startswith("MAINTAINER") else "LABEL", line)
            body = " ".join(text).rstrip("\\").strip()
            if line.lstrip().upper().startswith("MAINTAINER"):
                self.recipe[self.active_layer].labels.append(["maintainer", body])
                return
            try:
                words = shlex.split(body)
            except ValueError as exc:
                self.refused.append(f"LABEL {body[:60]}: {exc}")
                return
            if len(words) >= 2 and "=" not in words[0]:  # the legacy form: LABEL key value
                self.recipe[self.active_layer].labels.append([words[0], " ".join(words[1:])])
                return
            for word in words:
                key, _, value = word.partition("=")
                self.recipe[self.active_layer].labels.append([key, self._replace_from_dict(value, self.args)])

        def _copy(self, lines: str) -> None:
            words = self._setup("COPY", lines)
            args = " ".join(words).split()
            kept = []
            for word in args:
                if word.startswith("--from"):
                    self.refused.append(f"COPY {word}: files from another stage (multi-stage builds are not converted)")
                    return
                if word.startswith("--"):
                    self.notes.append(f"COPY {word}: dropped (%files copies as root; chmod/chown in %post if needed)")
                    continue
                kept.append(word)
            if len(kept) < 2:
                self.refused.append(f"COPY {' '.join(args)}: needs a source and a destination")
                return
            for source in kept[:-1]:
                self._add_files(source, kept[-1])

        def _add(self, lines: str) -> None:
            words = " ".join(self._setup("ADD", lines)).split()
            for flag in [w for w in words if w.startswith("--")]:
                self.notes.append(f"ADD {flag}: dropped (%files copies as root; chmod/chown in %post if needed)")
            kept = [w for w in words if not w.startswith("--")]
            if len(kept) < 2:
                self.refused.append(f"ADD {' '.join(words)}: needs a source and a destination")
                return
            for source in kept[:-1]:
                if re.match(r"^(https?|ftp)://", source):
                    self._parse_http(source, kept[-1])
                elif re.search(r"\.(tar|tgz|tar\.gz|tar\.bz2|tar\.xz|tbz2|txz)$", source):
                    self._parse_archive(source, kept[-1])
                else:
                    self._add_files(source, kept[-1])

        def _add_files(self, source: str, dest: str, layer: Optional[str] = None) -> None:
            self.recipe[self.active_layer].files.append([source, dest])

        def _parse_http(self, url: str, dest: str) -> None:
            self.needs_curl = True
            name = url.rstrip("/").rsplit("/", 1)[-1] or "download"
            target = dest if not dest.endswith("/") else f"{dest}{name}"
            folder = target.rsplit("/", 1)[0] or "/"
            self.recipe[self.active_layer].install += [f"mkdir -p {folder}", f"curl -fsSL --retry 3 -o {target} {url}"]
            self.notes.append(f"ADD {url}: downloaded with curl in %post (curl is installed first)")

        def _parse_archive(self, archive: str, dest: str) -> None:
            staged = f"/tmp/lute-import/{archive.rsplit('/', 1)[-1]}"
            self._add_files(archive, staged)  # Docker unpacks a local archive ADDed: so does %post
            self.recipe[self.active_layer].install += [
                f"mkdir -p {dest}",
                f"tar -xf {staged} -C {dest}",
                f"rm -f {staged}",
            ]

        def _default(self, line: str) -> None:
            word = line.strip().split(" ", 1)[0].upper()
            if word in IGNORED:
                self.notes.append(f"{line.strip()[:70]}: dropped ({IGNORED[word]})")
                return
            if line.strip():
                super()._default(line)

        def _test(self, line: str) -> None:
            self._default(line)

        def _volume(self, line: str) -> None:
            self._default(line)

        def _expose(self, line: str) -> None:
            self._default(line)

        def _stopsignal(self, line: str) -> None:
            self._default(line)

    return ConvertingParser()


def read_dockerfile(text: str) -> DockerRecipe:
    """Convert a Dockerfile's instructions into recipe sections (spython's DockerParser and SingularityWriter).

    Raises:
        DockerfileRefused: Something cannot be converted faithfully (every such line is named).
    """
    from spython.main.parse.writers.singularity import SingularityWriter

    parser = _parser([raw.rstrip("\n") for raw in text.splitlines()])
    recipe = parser.parse()
    if not parser.froms:
        parser.refused.append("no FROM line: not a Dockerfile")
    if parser.refused:
        raise DockerfileRefused("; ".join(parser.refused))
    stage = next(iter(recipe.values()))
    writer = SingularityWriter(recipe)
    writer.stage = next(iter(recipe))

    def body(attribute: str, name: str) -> List[str]:
        lines = writer._create_section(attribute, name)
        return [line for line in lines[1:] if line.strip()] if lines and lines[0] == f"%{name}" else []

    runscript = None
    if stage.cmd is not None or stage.entrypoint is not None:
        # Without an ENTRYPOINT, Docker runs CMD itself; spython would hand it to its default shell as a script.
        default = "/bin/sh" if stage.entrypoint is not None or stage.cmd is None else ""
        runscript = re.sub(r"^exec\s+", "exec ", writer._create_runscript(default))
        if stage.workdir is not None:
            runscript = f"cd {stage.workdir} && {runscript}"
    post = body("install", "post")
    if parser.needs_curl:
        post = ["lute_apt_install curl", *post]
    return DockerRecipe(
        base=stage.fromHeader,
        files=[(src, dest) for src, dest in stage.files],
        post=post,
        environment=body("environ", "environment"),
        labels=[(key, value) for key, value in stage.labels],
        runscript=runscript,
        notes=parser.notes,
    )
