"""Commands that keep the library: scan, status, failures, purge."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from musicsim.cli.common import Bar, Command, eprint, printable
from musicsim.jobs import CancelToken

if TYPE_CHECKING:
    from musicsim.library import Library


def _scan_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--retry-failed", action="store_true", help="try again files that failed before")


def scan(lib: Library, args: argparse.Namespace) -> int:
    if not lib.trained:
        eprint(f"note: {lib.status()['warning']}")
    bar, cancel = Bar(), CancelToken()
    try:
        rep = lib.scan(args.paths, progress=bar, cancel=cancel, retry_failed=args.retry_failed)
    except KeyboardInterrupt:
        cancel.cancel()
        raise
    finally:
        bar.close()
    speed = f", {rep.audio_seconds / rep.seconds:.0f}x real time" if rep.analysed and rep.seconds else ""
    print(
        f"found {rep.found}, analysed {rep.analysed}, unchanged {rep.skipped}, failed {rep.failed}, "
        f"missing {rep.missing} in {rep.seconds:.1f} s{speed}"
    )
    for path, reason in rep.failures:
        print(f"  failed: {printable(path)}: {reason}")
    if rep.still_failing:
        print(
            f"{rep.still_failing} unchanged files still fail (musicsim failures lists the reasons; "
            "--retry-failed tries them again)"
        )
    if rep.cancelled:
        print("scan cancelled; run it again to resume")
    return 1 if rep.failed or rep.failures or rep.still_failing else 0


def status(lib: Library, args: argparse.Namespace) -> int:
    st = lib.status()
    print(f"database: {st['database']}")
    print(f"model:    {st['model']} ({'trained' if st['trained'] else 'UNTRAINED'}, {st['checksum']})")
    print(f"tracks:   {st['tracks']} analysed, {st['indexed']} indexed, {st['failed']} failed, {st['missing']} missing")
    if st["degraded"]:
        print(f"degraded: {st['degraded']} MIDI tracks rendered without FluidSynth (install it and re-scan)")
    from musicsim.audio.midi import fluidsynth_available
    from musicsim.resources import fluidsynth_missing_note

    if not fluidsynth_available():
        print(f"midi:     {fluidsynth_missing_note()}")
    for r in st["roots"]:
        print(f"folder:   {printable(r)}")
    if st["warning"]:
        print(f"warning:  {st['warning']}")
    return 0


def failures(lib: Library, args: argparse.Namespace) -> int:
    rows = lib.failures()
    for f in rows:
        print(f"{printable(f.path)}: {f.reason}")
    if not rows:
        print("no failures")
    return 0


def purge(lib: Library, args: argparse.Namespace) -> int:
    done = lib.purge()
    removed, freed = lib.prune_mel_cache()
    print(f"purged {done.count} missing tracks; removed {removed} stale log-Mel cache entries ({freed / 2**20:.1f} MB)")
    for root in done.kept_roots:
        print(f"kept the tracks under {printable(root)}: the folder is not there now (an unmounted drive?)")
    return 0


SCAN = Command(
    "scan",
    "add folders or files to the library and analyse new or changed music",
    scan,
    _scan_arguments,
    writes=True,
)
STATUS = Command("status", "library size, active model, failures", status)
FAILURES = Command("failures", "files that could not be analysed, with the reason", failures)
PURGE = Command(
    "purge",
    "forget tracks whose files are gone, and cached log-Mel frames of files gone or changed",
    purge,
    writes=True,
)
