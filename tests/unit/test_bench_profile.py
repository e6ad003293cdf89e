"""The benchmark reports the profiles of its own measured runs only."""

from bench.profile_summary import profile_files


def test_only_the_measured_runs_profiles_are_reported(tmp_path):
    for name in ("profile-aaaa1111-worker-0.txt", "profile-aaaa1111-critical.txt",
                 "profile-bbbb2222-worker-0.txt", "profile-old00000-worker-0.txt",
                 "report.md"):
        (tmp_path / name).write_text("")
    found = [p.name for p in profile_files(tmp_path, {"aaaa1111", "bbbb2222"})]
    assert found == ["profile-aaaa1111-critical.txt", "profile-aaaa1111-worker-0.txt",
                     "profile-bbbb2222-worker-0.txt"]
