"""The docker-compose deployment, checked by structure (no Docker engine needed).

docker-compose.yaml, Dockerfile, .dockerignore, .env.example and the example pipelines config must agree
with each other and with the project's install (requirements.txt, constraints.txt, pyproject.toml,
Makefile): the same install command, every file that install needs copied into the image, the same
Airflow version, every mounted host path present, every required variable documented, and no real key
committed. The Dockerfile has two targets: `product` (what the Airflow services run, without the dev
tools) and `dev` (the product plus `include/hyperline_devtools`, for the emulator service only).
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import tomllib
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import pytest
import yaml
from packaging.specifiers import SpecifierSet

from hyperline_devtools.cluster import shared_settings
from hyperline_sync.config import load_config

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yaml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
ENV_EXAMPLE = REPO / ".env.example"
EXAMPLE_CONFIG = REPO / "include/docker/pipelines.compose.yaml"
POSTGRES_INIT = REPO / "include/docker/postgres-init.sql"
DEVTOOLS = "include/hyperline_devtools"
DEVTOOLS_PACKAGE = "hyperline_devtools"
PRODUCT_TARGET, DEV_TARGET = "product", "dev"

AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-init",
)
REQUIRED_SERVICES = ("postgres", "redis", "minio", "minio-init", *AIRFLOW_SERVICES)
IMAGE = "${AIRFLOW_IMAGE_NAME:-segment-hyperline-sync:latest}"
STATE_URL = "s3://hyperline-state/hyperline-sync"  # the bucket minio-init creates
RUNTIME_DIRS = {"logs"}  # created by airflow-init at start-up, not part of the repo
PLACEHOLDER = "REPLACE_ME"


# ----------------------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return parse_env_file(ENV_EXAMPLE.read_text(encoding="utf-8"))


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    return instructions


def parse_env_file(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f".env line without '=': {raw!r}"
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def install_args(command: str) -> dict[str, list[str]]:
    """The requirement (-r) and constraint (-c) files of a `pip install` command line."""
    tokens = shlex.split(command)
    found: dict[str, list[str]] = {"-r": [], "-c": [], "-e": []}
    aliases = {"-r": "-r", "--requirement": "-r", "-c": "-c", "--constraint": "-c", "-e": "-e", "--editable": "-e"}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        name, eq, inline = token.partition("=")
        if name in aliases:
            if eq:
                found[aliases[name]].append(inline)
            else:
                found[aliases[name]].append(tokens[i + 1])
                i += 1
        i += 1
    return found


def pip_install_runs(
    instructions: list[tuple[str, str]], stage: str | None = None
) -> list[tuple[int, str]]:
    """(index, arguments) of the RUNs that pip install, in one stage (by name) or in the whole file."""
    span = range(len(instructions)) if stage is None else stages(instructions)[stage]
    runs = [(i, instructions[i]) for i in span]
    return [(i, args) for i, (kw, args) in runs if kw == "RUN" and "pip install" in args]


def stages(instructions: list[tuple[str, str]]) -> dict[str, range]:
    """Instruction indexes of each build stage, by name (`FROM image AS name`); unnamed stages get `#<n>`."""
    starts = [i for i, (kw, _) in enumerate(instructions) if kw == "FROM"]
    found: dict[str, range] = {}
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(instructions)
        tokens = instructions[start][1].split()
        name = tokens[2] if len(tokens) == 3 and tokens[1].upper() == "AS" else f"#{n}"
        found[name] = range(start, end)
    return found


def stage_base(instructions: list[tuple[str, str]], stage: str) -> str:
    """What a stage is built FROM (an image, or an earlier stage's name)."""
    return instructions[stages(instructions)[stage].start][1].split()[0]


def install_needs(command: str) -> set[str]:
    """Repo-relative paths a `pip install` command line reads (requirement, constraint and project files)."""
    args = install_args(command)
    needed = set(args["-c"])
    for requirements in args["-r"]:
        needed |= files_the_install_needs((REPO / requirements).resolve())
    for project in args["-e"]:
        needed |= files_a_local_project_needs(REPO / project)
    return needed


def covered(path: str, copied: set[str]) -> bool:
    """`path` was copied itself, or inside a copied folder."""
    return any(path == c or path.startswith(c.rstrip("/") + "/") for c in copied)


def copies(instructions: list[tuple[str, str]]) -> list[tuple[int, list[str], list[str], str]]:
    """(index, flags, sources, destination) of every COPY/ADD from the build context."""
    found = []
    for i, (kw, args) in enumerate(instructions):
        if kw not in ("COPY", "ADD"):
            continue
        tokens = shlex.split(args)
        flags = [t for t in tokens if t.startswith("--")]
        paths = [t for t in tokens if not t.startswith("--")]
        if any(f.startswith("--from") for f in flags):
            continue
        found.append((i, flags, paths[:-1], paths[-1]))
    return found


def workdir(instructions: list[tuple[str, str]], before: int | None = None) -> PurePosixPath:
    dirs = [args for i, (kw, args) in enumerate(instructions) if kw == "WORKDIR" and (before is None or i < before)]
    assert dirs, "the Dockerfile sets no WORKDIR"
    return PurePosixPath(dirs[-1])


def files_the_install_needs(requirements: Path) -> set[str]:
    """Repo-relative paths that `pip install -r <requirements>` reads, following -r/-c and local projects."""
    needed = {requirements.relative_to(REPO).as_posix()}
    for raw in requirements.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        option, _, value = line.partition(" ")
        value = value.strip()
        if option in ("-r", "--requirement"):
            needed |= files_the_install_needs(requirements.parent / value)
        elif option in ("-c", "--constraint"):
            needed.add((requirements.parent / value).resolve().relative_to(REPO).as_posix())
        elif option in ("-e", "--editable") and value.startswith("."):
            needed |= files_a_local_project_needs(requirements.parent / value)
        elif line.startswith("."):
            needed |= files_a_local_project_needs(requirements.parent / line)
    return needed


def files_a_local_project_needs(project: Path) -> set[str]:
    """pyproject.toml, its readme, and the folders of the packages it installs (not whole `where` roots:
    the product's root `include/` also holds the dev tools, which the product must not ship)."""
    project = project.resolve()
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    needed = {"pyproject.toml"}
    readme = pyproject.get("project", {}).get("readme")
    if isinstance(readme, dict):
        readme = readme.get("file")
    if readme:
        needed.add(readme)
    setuptools = pyproject.get("tool", {}).get("setuptools", {})
    find = setuptools.get("packages", {}).get("find", {}) if isinstance(setuptools.get("packages"), dict) else {}
    patterns = find.get("include", ["*"])
    for where in find.get("where", []):
        for folder in sorted((project / where).iterdir()):
            top_level = folder.is_dir() and (folder / "__init__.py").exists()
            if top_level and any(fnmatch.fnmatch(folder.name, p) for p in patterns):
                needed.add(f"{where}/{folder.name}")
    needed |= set(setuptools.get("package-dir", {}).values())
    return {(project / p).resolve().relative_to(REPO).as_posix() for p in needed}


def volume_mounts(service: dict) -> list[tuple[str, str]]:
    """(source, target) of a service's volumes, short or long syntax."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            mounts.append((volume.get("source", ""), volume["target"]))
        else:
            parts = volume.split(":")
            mounts.append((parts[0], parts[1]))
    return mounts


def is_host_path(source: str) -> bool:
    return source.startswith((".", "/", "~", "$"))


def expand_defaults(value: str) -> str:
    """Compose interpolation with the defaults only: `${VAR:-default}` -> default; `${VAR}` is an error."""

    def replace(match: re.Match[str]) -> str:
        if match.group(2) not in ("-", ":-"):
            raise AssertionError(f"{value!r} needs ${{{match.group(1)}}} to be set")
        return match.group(3)

    return re.sub(r"\$\{([A-Za-z_]\w*)(:?-)?([^}]*)\}", replace, value)


def scalars(node: object) -> list[str]:
    """Every string value of a parsed YAML tree: what compose interpolates (comments are not)."""
    if isinstance(node, dict):
        return [s for value in node.values() for s in scalars(value)]
    if isinstance(node, list):
        return [s for value in node for s in scalars(value)]
    return [node] if isinstance(node, str) else []


def required_variables(compose: dict) -> set[str]:
    """Variables compose interpolates without a default (`${VAR}`, `$VAR`, `${VAR:?err}`, `${VAR?err}`)."""
    required = set()
    for value in scalars(compose):
        value = value.replace("$$", "")  # an escaped dollar reaches the container, not interpolation
        for match in re.finditer(r"\$(?:\{([A-Za-z_]\w*)(:?[-?+])?[^}]*\}|([A-Za-z_]\w*))", value):
            modifier = match.group(2)
            if modifier is None or modifier.endswith("?"):
                required.add(match.group(1) or match.group(3))
    return required


def airflow_env(compose: dict, name: str) -> dict[str, str]:
    """What an Airflow container's environment holds: the shared env_file, then `environment`."""
    service = compose["services"][name]
    env = {}
    for path in service.get("env_file", []):
        env.update(shared_settings(REPO / path))
    env.update({key: str(value) for key, value in service.get("environment", {}).items()})
    return env


def conn_env(conn_id: str) -> str:
    return "AIRFLOW_CONN_" + conn_id.upper()


# ----------------------------------------------------------------------------------------- compose
def test_compose_parses_with_every_service(compose):
    assert isinstance(compose, dict)
    services = compose.get("services", {})
    missing = [name for name in REQUIRED_SERVICES if name not in services]
    assert not missing, f"services missing from docker-compose.yaml: {missing}"
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"].startswith("redis:7.2")


def test_every_airflow_service_merges_the_common_anchor():
    root = yaml.compose(COMPOSE.read_text(encoding="utf-8"))

    def get(node: yaml.Node, key: str) -> yaml.Node | None:
        return next((v for k, v in node.value if k.value == key), None)

    common = get(root, "x-airflow-common")
    assert common is not None, "no x-airflow-common anchor"
    services = get(root, "services")
    names = [k.value for k, _ in services.value]
    airflow_like = set(AIRFLOW_SERVICES) | {n for n in names if n.startswith("airflow-")}
    for name in sorted(airflow_like):
        merged = get(get(services, name), "<<")
        assert merged is common, f"{name} does not merge <<: *airflow-common"


def test_every_airflow_service_runs_the_project_image_with_celery(compose):
    common = compose["x-airflow-common"]
    assert common["build"] == {"context": ".", "target": PRODUCT_TARGET}, (
        "the common anchor must build ./Dockerfile's product target"
    )
    assert common["image"] == IMAGE
    for name in AIRFLOW_SERVICES:
        service = compose["services"][name]
        assert service.get("build") == common["build"], f"{name} does not build the product image"
        assert service.get("image") == IMAGE, f"{name} runs {service.get('image')!r}"
        env = airflow_env(compose, name)
        assert env.get("AIRFLOW__CORE__EXECUTOR") == "CeleryExecutor", f"{name}: executor is not CeleryExecutor"
        assert service.get("env_file") == ["include/docker/celery.env"], f"{name}: not the tested settings"


def test_airflow_services_share_settings_secrets_and_connections(compose):
    expected = {
        "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "HYPERLINE_SYNC_CONFIG": "/opt/airflow/config/pipelines.yaml",
    }
    shared = ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API__SECRET_KEY")
    connections = ("AIRFLOW_CONN_HYPERLINE_DEFAULT", "AIRFLOW_CONN_AWS_DEFAULT", "AIRFLOW_CONN_HYPERLINE_LEDGER",
                   "AIRFLOW_CONN_HYPERLINE_STATE")
    for name in AIRFLOW_SERVICES:
        env = airflow_env(compose, name)
        for key, value in expected.items():
            assert env.get(key) == value, f"{name}: {key}={env.get(key)!r}, want {value!r}"
        for key in shared:
            # Each container must read the value from .env, not generate its own.
            assert env.get(key, "").startswith("${" + key), f"{name}: {key} is not taken from .env"
        for key in connections:
            assert env.get(key, "").startswith("${" + key), f"{name}: {key} is not passed through from .env"
        url = urlsplit(env.get("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", ""))
        assert (url.hostname, url.port, url.path) == ("airflow-apiserver", 8080, "/execution/"), name
    ledger_default = compose["x-airflow-common"]["environment"]["AIRFLOW_CONN_HYPERLINE_LEDGER"]
    assert expand_defaults(ledger_default) == "postgresql://airflow:airflow@postgres:5432/hyperline_ledger"


def test_apiserver_serves_the_ui_and_its_health_endpoint(compose):
    apiserver = compose["services"]["airflow-apiserver"]
    assert apiserver["command"] == "api-server"
    assert "8080:8080" in apiserver["ports"]
    assert "http://localhost:8080/api/v2/version" in apiserver["healthcheck"]["test"]


def test_airflow_init_migrates_creates_the_admin_and_the_hyperline_pool(compose):
    init = compose["services"]["airflow-init"]
    env, script = init["environment"], "\n".join(init["command"])
    assert env.get("_AIRFLOW_DB_MIGRATE") == "true"
    assert env.get("_AIRFLOW_WWW_USER_CREATE") == "true"
    assert 'airflow pools set hyperline 4 "Concurrent senders to Hyperline"' in script
    # Every pipeline's sync tasks run in a pool that must exist, or Airflow never schedules them.
    pools = set(re.findall(r"airflow pools set (\S+) ", script))
    for pipeline in load_config(EXAMPLE_CONFIG).pipelines:
        pool = getattr(pipeline.tuning, "pool", "hyperline")  # the DAG's default pool
        assert pool in pools, f"pipeline {pipeline.name} runs in pool {pool!r}, which airflow-init doesn't create"


def test_every_mounted_host_path_exists(compose):
    declared = set(compose.get("volumes") or {})
    checked = 0
    for name, service in compose["services"].items():
        for source, target in volume_mounts(service):
            if not is_host_path(source):
                assert source in declared, f"{name}: named volume {source!r} is not declared under volumes:"
                continue
            path = (REPO / Path(expand_defaults(source)).expanduser()).resolve()
            if not path.is_relative_to(REPO):
                pytest.fail(f"{name}: {source} is outside the repo")
            if path.relative_to(REPO).parts[:1] in {(d,) for d in RUNTIME_DIRS}:
                continue
            assert path.exists(), f"{name}: {source} (mounted at {target}) does not exist in the repo"
            checked += 1
    assert checked, "no host path mounted at all"


def test_state_is_in_minio_and_the_config_is_shared_by_every_airflow_service(compose):
    """No shared volume for the state (managed Airflow has none): MinIO's bucket, created before Airflow starts."""
    assert "hyperline-state" not in (compose.get("volumes") or {})
    minio_init = compose["services"]["minio-init"]
    assert "mb --ignore-existing local/hyperline-state" in " ".join(minio_init["command"])
    assert minio_init["depends_on"]["minio"]["condition"] == "service_healthy"
    assert compose["x-airflow-common"]["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"
    for name in AIRFLOW_SERVICES:
        service = compose["services"][name]
        mounts = dict((target, source) for source, target in volume_mounts(service))
        assert "/opt/airflow/hyperline_sync" not in mounts, f"{name}: the state is not on a volume any more"
        config_target = service["environment"]["HYPERLINE_SYNC_CONFIG"]
        assert mounts.get(config_target) == "./" + EXAMPLE_CONFIG.relative_to(REPO).as_posix(), (
            f"{name}: nothing mounted at HYPERLINE_SYNC_CONFIG={config_target}"
        )
        assert mounts.get("/opt/airflow/dags") == "./dags", name
        assert mounts.get("/opt/airflow/plugins") == "./plugins", name


def test_two_workers_run_one_task_each_as_in_the_distributed_test(compose):
    assert compose["services"]["airflow-worker"]["deploy"]["replicas"] == 2
    assert shared_settings()["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "1"


def test_editable_install_sees_the_mounted_code(compose, dockerfile):
    # `-e .` points at <WORKDIR>/include and <WORKDIR>/plugins: the working tree must be mounted there.
    install_at, _ = pip_install_runs(dockerfile, PRODUCT_TARGET)[0]
    project_dir = workdir(dockerfile, before=install_at)
    where = files_a_local_project_needs(REPO) - {"pyproject.toml", "README.md"}
    for name in AIRFLOW_SERVICES:
        mounts = dict((target, source) for source, target in volume_mounts(compose["services"][name]))
        for package_dir in sorted(where):
            target = str(project_dir / package_dir)
            assert mounts.get(target) == f"./{package_dir}", f"{name}: ./{package_dir} is not mounted at {target}"


def test_postgres_creates_the_ledger_database(compose):
    postgres = compose["services"]["postgres"]
    mounts = volume_mounts(postgres)
    init_source = "./" + POSTGRES_INIT.relative_to(REPO).as_posix()
    assert any(s == init_source and t.startswith("/docker-entrypoint-initdb.d/") for s, t in mounts), (
        f"{init_source} is not mounted into /docker-entrypoint-initdb.d"
    )
    ledger_url = expand_defaults(compose["x-airflow-common"]["environment"]["AIRFLOW_CONN_HYPERLINE_LEDGER"])
    database = urlsplit(ledger_url).path.lstrip("/")
    assert re.search(rf"CREATE DATABASE\s+{database}\b", POSTGRES_INIT.read_text(encoding="utf-8"), re.IGNORECASE)


def test_emulator_service_binds_all_interfaces_under_its_profile(compose):
    emulator = compose["services"]["hyperline-emulator"]
    assert emulator["profiles"] == ["emulator"]
    command = emulator["command"]
    command = shlex.split(command) if isinstance(command, str) else command
    assert command[:3] == ["python", "-m", "hyperline_devtools.emulator"]
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert command[command.index("--port") + 1] == "8090"
    assert command[command.index("--api-key") + 1] == "${HYPERLINE_EMULATOR_KEY:-test_local}"
    # The emulator CLI must accept the flags used here.
    source = (REPO / "include/hyperline_devtools/emulator.py").read_text(encoding="utf-8")
    for flag in ("--host", "--port", "--api-key"):
        assert f'"{flag}"' in source, f"hyperline_devtools.emulator has no {flag} option"


def test_emulator_service_builds_the_dev_target_under_its_own_tag(compose, dockerfile):
    emulator = compose["services"]["hyperline-emulator"]
    # The product image has no hyperline_devtools: `python -m hyperline_devtools.emulator` needs the dev one.
    assert emulator["build"] == {"context": ".", "target": DEV_TARGET}
    assert DEV_TARGET in stages(dockerfile), f"the Dockerfile has no {DEV_TARGET!r} stage"
    # One tag for two targets: whichever is built last would replace the other, and the Airflow
    # services could end up running the dev image.
    assert emulator["image"] != compose["x-airflow-common"]["image"], "the dev image needs a tag of its own"
    mounts = dict((target, source) for source, target in volume_mounts(emulator))
    assert mounts.get(f"/opt/hyperline-sync/{DEVTOOLS}") == f"./{DEVTOOLS}", "the dev tools' live code is not mounted"


def test_airflow_services_never_see_the_dev_tools(compose):
    for name in AIRFLOW_SERVICES:
        for source, target in volume_mounts(compose["services"][name]):
            path = source.removeprefix("./").rstrip("/")
            assert not (path == DEVTOOLS or DEVTOOLS.startswith(path + "/")), (
                f"{name}: mounting {source} at {target} puts the dev tools in a product container"
            )


# -------------------------------------------------------------------------------------- Dockerfile
def test_the_image_installs_the_runtime_part_of_the_makefile_install(dockerfile):
    """The Makefile installs the dev requirements, which include the image's runtime ones under the same lock."""
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    make_lines = [line for line in makefile.splitlines() if "pip install" in line and " -r " in line]
    assert len(make_lines) == 1, f"expected one project install command in the Makefile, got {make_lines}"
    runs = pip_install_runs(dockerfile, PRODUCT_TARGET)
    assert len(runs) == 1, f"expected exactly one pip install in the product stage, got {[r for _, r in runs]}"
    index, command = runs[0]
    image, make = install_args(command), install_args(make_lines[0].strip())
    assert image == {"-r": ["requirements.txt"], "-c": ["constraints.txt"], "-e": []}, command
    assert make["-c"] == image["-c"], f"Dockerfile installs with {command!r}, Makefile with {make_lines[0]!r}"
    read_by_make = set().union(*(files_the_install_needs((REPO / r).resolve()) for r in make["-r"]))
    assert "requirements.txt" in read_by_make, "the Makefile's install must include requirements.txt"
    users = [args for kw, args in dockerfile[:index] if kw == "USER"]
    assert users and users[-1] == "airflow", "the official image runs pip as user airflow: USER airflow first"


@pytest.mark.parametrize("stage", [PRODUCT_TARGET, DEV_TARGET])
def test_dockerfile_copies_everything_the_install_needs(dockerfile, stage):
    """Every pip install of the stage finds its files; COPYs land where the editable installs expect them."""
    for index, command in pip_install_runs(dockerfile, stage):
        copied = copied_before(dockerfile, index)
        missing = sorted(p for p in install_needs(command) if not covered(p, copied))
        assert not missing, f"{stage}: `{command}` needs {missing}, not copied before it"


def copied_before(dockerfile: list[tuple[str, str]], index: int) -> set[str]:
    """Repo paths COPYed before instruction `index`, each checked to land at the same path under WORKDIR."""
    copied_before_install: set[str] = set()
    ignore = [p.strip().lstrip("/") for p in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()]
    ignore = [p for p in ignore if p and not p.startswith(("#", "!"))]
    for at, flags, sources, destination in copies(dockerfile):
        assert "--chown=airflow:root" in flags, f"COPY {sources} must be --chown=airflow:root"
        dest = PurePosixPath(destination)
        dest = dest if dest.is_absolute() else workdir(dockerfile, before=at) / dest
        for source in sources:
            path = source.rstrip("/")
            assert (REPO / path).exists(), f"COPY {source}: not in the repo (the build would fail)"
            hits = [p for p in ignore if fnmatch.fnmatch(path, p) or path.startswith(p.rstrip("/") + "/")]
            assert not hits, f"COPY {source} is excluded by .dockerignore {hits}"
            if (REPO / path).is_dir():
                landed = dest  # COPY puts a directory's contents into the destination
            elif len(sources) > 1 or destination.endswith("/"):
                landed = dest / PurePosixPath(path).name
            else:
                landed = dest
            project_dir = workdir(dockerfile, before=at)
            assert landed == project_dir / path, f"COPY {source} lands at {landed}, not {project_dir / path}"
            if at < index:
                copied_before_install.add(path)
    return copied_before_install


def test_the_product_image_does_not_install_the_dev_tools(dockerfile):
    """The product stage neither copies nor installs include/hyperline_devtools (the dev stage does)."""
    product = stages(dockerfile)[PRODUCT_TARGET]
    copied = copied_before(dockerfile, product.stop)
    assert not covered(DEVTOOLS, copied), f"the product stage copies {DEVTOOLS} (copied: {sorted(copied)})"
    for _, command in pip_install_runs(dockerfile, PRODUCT_TARGET):
        needs = install_needs(command)
        assert not any(covered(p, {DEVTOOLS}) for p in needs), f"`{command}` installs {DEVTOOLS}"
        assert DEVTOOLS_PACKAGE not in command
    # requirements.txt (the product's install) must not pull the dev tools in by any route.
    assert not any(covered(p, {DEVTOOLS}) for p in files_the_install_needs(REPO / "requirements.txt"))
    # ... whereas the dev install (requirements-dev.txt) does, which is what the dev stage mirrors.
    assert any(covered(p, {DEVTOOLS}) for p in files_the_install_needs(REPO / "requirements-dev.txt"))


def test_the_dev_image_is_the_product_plus_the_dev_tools(dockerfile):
    assert stage_base(dockerfile, DEV_TARGET) == PRODUCT_TARGET, "the dev stage must build FROM the product stage"
    installed = [p for _, command in pip_install_runs(dockerfile, DEV_TARGET) for p in install_args(command)["-e"]]
    assert [PurePosixPath(p).as_posix().removeprefix("./") for p in installed] == [DEVTOOLS]
    # Plain `docker build .` builds the last stage: it must be the product, never the dev tools.
    last = list(stages(dockerfile))[-1]
    assert last == PRODUCT_TARGET or stage_base(dockerfile, last) == PRODUCT_TARGET
    assert not any(kw in ("RUN", "COPY", "ADD") for kw, _ in (dockerfile[i] for i in stages(dockerfile)[last]))


def test_base_image_matches_the_airflow_pin(dockerfile):
    names = list(stages(dockerfile))
    external = [stage_base(dockerfile, name) for name in names if stage_base(dockerfile, name) not in names]
    assert external == [stage_base(dockerfile, PRODUCT_TARGET)], "every stage but the product builds on another"
    match = re.fullmatch(r"apache/airflow:(?P<airflow>[\w.]+)-python(?P<python>\d+\.\d+)", external[0])
    assert match, f"unexpected base image {external[0]!r}"
    for pins in ("requirements.txt", "constraints.txt"):
        text = (REPO / pins).read_text(encoding="utf-8")
        pinned = re.findall(r"^apache-airflow==([\w.]+)\s*$", text, re.MULTILINE | re.IGNORECASE)
        assert pinned == [match["airflow"]], f"{pins} pins apache-airflow {pinned}, the image is {match['airflow']}"
    requires_python = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["requires-python"]
    assert SpecifierSet(requires_python).contains(match["python"] + ".0"), (
        f"image python {match['python']} does not satisfy requires-python {requires_python}"
    )


def test_dockerignore_keeps_local_state_and_secrets_out():
    patterns = {p.strip() for p in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()}
    for pattern in (".venv", ".airflow*", ".demo", "bench/data", "**/__pycache__", ".git", ".env"):
        assert pattern in patterns, f".dockerignore lacks {pattern}"


# ------------------------------------------------------------------------- config and environment
def test_example_config_loads_and_matches_the_deployment(compose):
    config = load_config(EXAMPLE_CONFIG)
    assert config.pipelines, "the example config declares no pipeline"
    assert str(config.state.dir) == STATE_URL, "state.dir must be MinIO's hyperline-state bucket"
    env = compose["x-airflow-common"]["environment"]
    conn_ids = {c for c in (config.state.ledger_conn_id, config.state.conn_id) if c}
    for pipeline in config.pipelines:
        conn_ids.add(pipeline.hyperline_conn_id)
        if pipeline.source.aws_conn_id:
            conn_ids.add(pipeline.source.aws_conn_id)
    missing = sorted(conn_env(c) for c in conn_ids if conn_env(c) not in env)
    assert not missing, f"the example config uses connections compose doesn't pass through: {missing}"


def test_env_example_holds_no_real_key(env_example):
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    assert not re.search(r"\b(?:prod|test)_[A-Za-z0-9]{12,}", text), "looks like a real Hyperline API key"
    assert not re.search(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", text), "looks like a real AWS access key id"
    hyperline = yaml.safe_load(env_example["AIRFLOW_CONN_HYPERLINE_DEFAULT"])
    assert hyperline["conn_type"] == "hyperline"
    assert PLACEHOLDER in hyperline["password"], "the Hyperline API key must be a placeholder"
    for key, value in env_example.items():
        if key.startswith("AIRFLOW_CONN_") and value.startswith("{"):
            password = yaml.safe_load(value).get("password")
            assert password is None or PLACEHOLDER in password, f"{key} holds a real-looking password"
        if re.search(r"SECRET|FERNET|PASSWORD", key):
            assert PLACEHOLDER in value, f"{key} must be a {PLACEHOLDER} placeholder, got {value!r}"


def test_every_variable_compose_requires_is_in_env_example(compose, env_example):
    required = required_variables(compose)
    assert "AIRFLOW__API_AUTH__JWT_SECRET" in required, "the JWT secret must come from .env"
    missing = sorted(required - set(env_example))
    assert not missing, f"docker-compose.yaml needs {missing} without a default; add them to .env.example"


def test_env_example_defines_the_documented_variables(env_example):
    assert env_example.get("AIRFLOW_UID") == "50000"
    for key in ("_AIRFLOW_WWW_USER_USERNAME", "_AIRFLOW_WWW_USER_PASSWORD", "AIRFLOW_CONN_AWS_DEFAULT"):
        assert key in env_example, f".env.example lacks {key}"
    aws = yaml.safe_load(env_example["AIRFLOW_CONN_AWS_DEFAULT"])
    assert aws["conn_type"] == "aws" and aws["extra"].get("region_name")
    assert env_example.get("AIRFLOW_CONN_HYPERLINE_LEDGER") == (
        "postgresql://airflow:airflow@postgres:5432/hyperline_ledger"
    )
    state = yaml.safe_load(env_example["AIRFLOW_CONN_HYPERLINE_STATE"])
    assert state["conn_type"] == "aws" and state["extra"]["endpoint_url"] == "http://minio:9000"
    assert state["login"] == env_example["MINIO_ROOT_USER"]
