"""Playing a call's recording on its page: `/calls/{id}/recording` streams the WAV file the
CDR names, to a user who may see that call, only from under router.yaml's recordings_dir.
Another subscriber's call, a call without a recording, a purged one, and a path leading
out of the directory (by `..` or a symbolic link) all answer 404, like any unknown page."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from router.storage.cdr import FinishCall
from tests.console.harness import CLINIC, NOW, SHOP, Site, a_call, csrf_of, running_console

WAV = b"RIFF" + (36).to_bytes(4, "little") + b"WAVEfmt " + bytes(24) + b"data" + bytes(4)


def recordings_dir(site: Site, tmp_path: Path) -> Path:
    """Point router.yaml's recordings_dir at a directory of the test (the console reloads)."""
    directory = tmp_path / "recordings"
    directory.mkdir()
    router_yaml = site.config_dir / "router.yaml"
    text = router_yaml.read_text(encoding="utf-8")
    moved = re.sub(r"^recordings_dir: .*$", f"recordings_dir: {directory}", text, flags=re.M)
    assert moved != text
    router_yaml.write_text(moved, encoding="utf-8")
    return directory


async def recorded_call(site: Site, call_id: str, number: str, path: Path | str) -> None:
    ops = a_call(call_id, number, NOW - timedelta(minutes=10))
    await site.store.apply([*ops, FinishCall(call_id, {"recording_path": str(path)})])


def a_recording(directory: Path, number: str, call_id: str) -> Path:
    file = directory / number / "2026-11-24" / f"{call_id}.wav"
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(WAV)
    return file


async def test_a_subscriber_plays_its_own_calls_recording_from_the_call_page(
    tmp_path: Path,
) -> None:
    async with running_console(tmp_path) as site:
        directory = recordings_dir(site, tmp_path)
        file = a_recording(directory, CLINIC, "rec.1")
        await recorded_call(site, "rec.1", CLINIC, file)
        clinic = await site.signed_in("clinic")
        page = (await clinic.get("/calls/rec.1")).text
        assert '<audio controls preload="none" src="/calls/rec.1/recording"' in page
        played = await clinic.get("/calls/rec.1/recording")
        assert played.status_code == 200
        assert played.headers["content-type"] == "audio/wav"
        assert played.headers["cache-control"] == "no-store"
        assert played.content == WAV
        operator = await site.signed_in("ops")
        assert (await operator.get("/calls/rec.1/recording")).content == WAV
        later_part = await operator.get("/calls/rec.1/recording", headers={"Range": "bytes=8-"})
        assert later_part.status_code in (200, 206)
        await clinic.aclose()
        await operator.aclose()
        listened = [
            (entry.actor, entry.action, entry.target, entry.detail)
            for entry in await site.store.audit_log()
            if entry.action == "play recording"
        ]
    assert sorted(listened) == [  # one entry a listening, not one a ranged request
        ("clinic", "play recording", "rec.1", f"call to {CLINIC}"),
        ("ops", "play recording", "rec.1", f"call to {CLINIC}"),
    ]


async def test_another_subscriber_and_a_signed_out_visitor_never_get_it(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        directory = recordings_dir(site, tmp_path)
        await recorded_call(site, "rec.2", CLINIC, a_recording(directory, CLINIC, "rec.2"))
        shop = await site.signed_in("shop")
        refused = await shop.get("/calls/rec.2/recording")
        assert refused.status_code == 404 and WAV not in refused.content
        assert (await shop.get("/calls/rec.2")).status_code == 404
        async with site.client() as visitor:
            response = await visitor.get("/calls/rec.2/recording")
            assert response.status_code == 303 and "/login" in response.headers["location"]
        await shop.aclose()


async def test_only_a_file_under_recordings_dir_named_by_the_cdr_is_served(
    tmp_path: Path,
) -> None:
    async with running_console(tmp_path) as site:
        directory = recordings_dir(site, tmp_path)
        secret = tmp_path / "secret.wav"
        secret.write_bytes(WAV)
        (directory / SHOP).mkdir()
        (directory / SHOP / "link.wav").symlink_to(secret)
        await recorded_call(site, "out.1", SHOP, directory / SHOP / ".." / ".." / "secret.wav")
        await recorded_call(site, "out.2", SHOP, directory / SHOP / "link.wav")
        await recorded_call(site, "out.3", SHOP, "secret.wav")  # not absolute
        await recorded_call(site, "out.4", SHOP, directory / SHOP)  # a directory
        await recorded_call(site, "gone.1", SHOP, directory / SHOP / "gone.wav")
        await site.store.apply(a_call("none.1", SHOP, NOW - timedelta(minutes=5)))
        operator = await site.signed_in("ops")
        for call_id in ("out.1", "out.2", "out.3", "out.4", "gone.1", "none.1", "no-such"):
            response = await operator.get(f"/calls/{call_id}/recording")
            assert response.status_code == 404, call_id
            assert WAV not in response.content
        await operator.aclose()


async def test_a_purged_recording_is_not_played_and_its_page_says_so(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        directory = recordings_dir(site, tmp_path)
        await recorded_call(site, "old.1", SHOP, a_recording(directory, SHOP, "old.1"))
        await site.store.recording_purged("old.1", NOW)
        shop = await site.signed_in("shop")
        assert (await shop.get("/calls/old.1/recording")).status_code == 404
        page = (await shop.get("/calls/old.1")).text
        assert "<audio" not in page
        assert "removed 2026-11-24, its retention over" in page
        await shop.aclose()


async def test_a_plan_cannot_play_a_file_outside_the_sounds_folder_to_callers(
    tmp_path: Path,
) -> None:
    """A prompt is a sound Asterisk plays to the caller: named by a leading / or with `..`
    it would be any file of the server, another number's recorded conversations too."""
    async with running_console(tmp_path) as site:
        directory = recordings_dir(site, tmp_path)
        clinics = a_recording(directory, CLINIC, "rec.3").with_suffix("")
        shop = await site.signed_in("shop")
        routing = f"/numbers/{SHOP}/routing"
        plan_file = site.config_dir / "plans" / f"{SHOP}.yaml"
        before = plan_file.read_text(encoding="utf-8")
        token = await csrf_of(shop, routing)
        for prompt in (str(clinics), f"../../../..{clinics}", "hotline400/../../../etc/x"):
            plan = (
                f'number: "{SHOP}"\nname: Shop\nmenus:\n  main:\n    prompt: "{prompt}"\n'
                '    options:\n      1: {target: "13900000001"}\n'
                '    default: {target: "13900000001"}\ndefault: {menu: main}\n'
            )
            saved = await shop.post(
                routing, data={"csrf": token, "mode": "yaml", "action": "save", "yaml": plan}
            )
            assert saved.status_code == 422, prompt
            assert "menus.main.prompt:" in saved.text and "sounds folder" in saved.text
        assert plan_file.read_text(encoding="utf-8") == before
        await shop.aclose()
