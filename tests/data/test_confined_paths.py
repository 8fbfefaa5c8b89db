"""The one confinement check every reader uses: what opening a path would read, links followed."""

from __future__ import annotations

import pytest

from syncxr.data.confined_paths import OutsideRootError, RootConfinement


def test_a_link_followed_before_dotdot_is_judged_by_where_it_leads(tmp_path):
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere" / "deep"
    root.mkdir()
    elsewhere.mkdir(parents=True)
    (root / "link").symlink_to(elsewhere)
    inside = RootConfinement(root, what="dataset directory")
    # Written as "link/../x.png" it looks like root/x.png; opened, it is elsewhere/x.png.
    with pytest.raises(OutsideRootError, match=rf"'link/../x.png' is a symbolic link .* to {tmp_path}/elsewhere/x.png"):
        inside.path("link/../x.png")
    assert inside.path("sub/../x.png") == root / "sub/../x.png"
    assert RootConfinement(root, allow_external=True).path("link/../x.png") == root / "link/../x.png"
    with pytest.raises(OutsideRootError, match=r"'' is outside the dataset directory"):
        inside.path("")  # the root itself is no file in it
