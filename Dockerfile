# Airflow 3 image with this project installed: the `hyperline_sync` domain package, the Hyperline
# provider (its `apache_airflow_provider` entry point gives Airflow the "Hyperline" connection type)
# and the `hyperline-sync` CLI. Built by docker-compose.yaml (`build: .`).
#
# The base tag must match the apache-airflow pin in requirements.txt / constraints.txt: the install
# below then keeps the image's own Airflow where it is (checked at build time and by
# tests/deploy/test_docker_compose.py).
FROM apache/airflow:3.3.2-python3.11

# The project lives next to AIRFLOW_HOME, not inside it. The state dir is created here (owned by
# airflow, group root, group-writable like the rest of the image) so the `hyperline-state` named
# volume mounted on it starts with the right ownership.
USER root
RUN mkdir -p /opt/hyperline-sync /opt/airflow/hyperline_sync \
    && chown airflow:root /opt/hyperline-sync /opt/airflow/hyperline_sync \
    && chmod g+rwx /opt/hyperline-sync /opt/airflow/hyperline_sync

# The official image refuses pip as root: packages go into airflow's environment (~/.local).
USER airflow
WORKDIR /opt/hyperline-sync

# Everything `-r requirements.txt` needs: the pins, and for its `-e .` line the packaging metadata
# (pyproject.toml, README.md) and the package folders it points at (include/, plugins/).
COPY --chown=airflow:root requirements.txt constraints.txt pyproject.toml README.md ./
COPY --chown=airflow:root include/ include/
COPY --chown=airflow:root plugins/ plugins/

# The project's one install command (same as `make install`). The editable install keeps pointing at
# /opt/hyperline-sync/{include,plugins}, which docker-compose.yaml bind-mounts for live code.
RUN pip install --no-cache-dir -r requirements.txt -c constraints.txt

# constraints.txt is our own lock, not the image's: fail the build rather than ship an image whose
# packages disagree, or whose Airflow was moved off the version the base image was built for.
RUN pip check \
    && installed="$(python -c 'import importlib.metadata as m; print(m.version("apache-airflow"))')" \
    && if [ "${installed}" != "${AIRFLOW_VERSION}" ]; then \
        echo "apache-airflow is ${installed} after the install, the base image ships ${AIRFLOW_VERSION}:" \
             "align FROM with the pin in requirements.txt/constraints.txt" >&2; \
        exit 1; \
    fi

# DAG files last: editing them does not re-run pip. docker-compose.yaml mounts ./dags at
# /opt/airflow/dags; without that mount, set AIRFLOW__CORE__DAGS_FOLDER=/opt/hyperline-sync/dags.
COPY --chown=airflow:root dags/ dags/
