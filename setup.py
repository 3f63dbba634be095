"""The one thing pyproject.toml cannot say: the checkout's top-level ``resources/`` folder (the
source of the default model, its card, the icons and the desktop files) goes into the wheel as
the package ``musicsim._resources``, where :mod:`musicsim.resources` finds it once installed.
Only the files matching ``SHIPPED`` go (not, for instance, the corpus script beside the model)."""

from pathlib import Path

from setuptools import find_packages, setup

SHIPPED = ["default.pt", "MODEL_CARD.md", "*.svg", "*.png", "*.desktop", "*.metainfo.xml"]
# Each folder of resources/ is a (data-only) package of its own, so setuptools takes it as meant.
RESOURCE_PACKAGES = {
    ".".join(("musicsim._resources", *d.relative_to("resources").parts)): SHIPPED
    for d in [Path("resources"), *sorted(Path("resources").rglob("*"))]
    if d.is_dir() and d.name != "__pycache__"
}

setup(
    packages=[*find_packages(include=["musicsim*", "trainer*"]), *RESOURCE_PACKAGES],
    package_dir={"musicsim._resources": "resources"},
    package_data=RESOURCE_PACKAGES,
    include_package_data=False,
)
