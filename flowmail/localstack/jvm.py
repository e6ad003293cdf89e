"""Finding the JDK and Maven, and resolving a pom's runtime closure into a lib folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from flowmail.localstack.procs import StackError, run_checked


def java_home(configured: str) -> Path:
    """The JDK to run the stack with: FLOWMAIL_JAVA_HOME, else JAVA_HOME, else java on PATH."""
    candidates = [configured, os.environ.get("JAVA_HOME", "")]
    for candidate in candidates:
        if candidate and (Path(candidate) / "bin" / "java").exists():
            return Path(candidate)
    java = shutil.which("java")
    if java:
        return Path(java).resolve().parent.parent
    raise StackError("no JDK found: install OpenJDK 17 (apt-get install openjdk-17-jdk-headless) "
                     "or set FLOWMAIL_JAVA_HOME to a JDK 17 folder")


def require_javac(jdk: Path) -> Path:
    javac = jdk / "bin" / "javac"
    if not javac.exists():
        raise StackError(f"{jdk} is a JRE without javac; set FLOWMAIL_JAVA_HOME to a full JDK 17")
    return javac


def maven_fetch(pom: Path, lib: Path, repo: Path, jdk: Path, log: Path) -> None:
    """Copy the runtime closure of ``pom`` into ``lib`` once; a marker file makes reruns free."""
    marker = lib / ".complete"
    if marker.exists() and marker.read_text() == pom.read_text():
        return
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError("Maven (mvn) not found on PATH: install it (apt-get install maven); "
                         "the local stack is assembled from Maven Central artifacts")
    if lib.exists():
        shutil.rmtree(lib)
    lib.mkdir(parents=True)
    env = {**os.environ, "JAVA_HOME": str(jdk)}
    run_checked([mvn, "-B", "-q", f"-Dmaven.repo.local={repo}", "-f", str(pom),
                 "dependency:copy-dependencies", "-DincludeScope=runtime",
                 f"-DoutputDirectory={lib}"], f"mvn fetch for {pom.name}", log, env)
    marker.write_text(pom.read_text())
