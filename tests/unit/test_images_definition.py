"""Rendered definition files read by spython's recipe parser (lute_kernel.images.definition).

spython is made faithful to our definitions: any bootstrap agent, From: kept as written, a
section's first line that mentions bootstrap or from: kept in its section, comment lines and
indented %-lines never taken for sources, labels or sections.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from lute_kernel.images.definition import parse_definition


def test_header_sections_files_labels_and_environment() -> None:
    text = textwrap.dedent(
        """\
        # lute-kernel image "x": a comment that mentions Bootstrap: docker and From: nowhere
        Bootstrap: localimage
        From: /Cache/Base-ABC.sif
        %files
            debootstrap-notes.txt /opt/notes.txt
            # a comment, not a source
            from: /weird
        %files from stage1
            /built/in/stage /y
        %post
            printf '%s\\n' hello
            %not-a-section
        %environment
            export PATH=/opt/lute/bin:$PATH LC_ALL=C.UTF-8
        %labels
            org.lute-kernel.image x
            org.lute-kernel.description two words
        """
    )
    definition = parse_definition(text)
    assert (definition.agent, definition.base) == ("localimage", "/Cache/Base-ABC.sif")
    assert definition.sections == (("files", 4), ("files", 8), ("post", 10), ("environment", 13), ("labels", 15))
    assert definition.files == (("debootstrap-notes.txt", "/opt/notes.txt"), ("from:", "/weird"))
    assert definition.sources == ["debootstrap-notes.txt", "from:"]
    assert definition.labels == {"org.lute-kernel.image": "x", "org.lute-kernel.description": "two words"}
    assert definition.environment == ("PATH=/opt/lute/bin:$PATH LC_ALL=C.UTF-8",)


def test_no_bootstrap_and_a_source_without_destination() -> None:
    definition = parse_definition("%files\n    data.txt\n")
    assert (definition.agent, definition.files, definition.sections) == (
        None,
        (("data.txt", "data.txt"),),
        (("files", 1),),
    )


def test_a_recipe_copied_without_renaming_its_image_label_is_refused(tmp_path: Path) -> None:
    from lute_kernel.errors import InputError
    from lute_kernel.images.recipes import load_recipes
    from lute_kernel.images.render import check_definition

    (tmp_path / "copy.def.j2").write_text("{#- lute-image\ndescription: x\n-#}\n")
    recipe = load_recipes(tmp_path).get("copy")
    text = "Bootstrap: docker\nFrom: debian\n%labels\n    org.lute-kernel.image original\n"
    with pytest.raises(InputError, match=r"line 4: label org\.lute-kernel\.image is 'original', not 'copy'"):
        check_definition(text, recipe)
    assert check_definition(text.replace("original", "copy"), recipe).labels == {"org.lute-kernel.image": "copy"}
