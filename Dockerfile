# Airflow 3 images of this project, in two targets:
#   product  the `hyperline_sync` domain package, the Hyperline provider (its `apache_airflow_provider`
#            entry point gives Airflow the "Hyperline" connection type) and the `hyperline-sync` CLI.
#            What the Airflow services of docker-compose.yaml run. The default target.
#   dev      product plus the development tools (`include/hyperline_devtools`: the local Hyperline
#            emulator, the Segment sample generators, the demo). Only the compose file's
#            `hyperline-emulator` service runs it; never deploy it.
#
# The base tag must match the apache-airflow pin in requirements.txt / constraints.txt: the install
# below then keeps the image's own Airflow where it is (checked at build time and by
# tests/deploy/test_docker_compose.py).
FROM apache/airflow:3.3.2-python3.11 AS product

# The project lives next to AIRFLOW_HOME, not inside it. The default (local) state dir is created
# here, owned by airflow, group root, group-writable like the rest of the image: one machine may keep
# its state there; docker-compose.yaml keeps it in object storage (MinIO) for its several workers.
# The Celery provider comes with requirements.txt.
USER root
RUN mkdir -p /opt/hyperline-sync /opt/airflow/hyperline_sync \
    && chown airflow:root /opt/hyperline-sync /opt/airflow/hyperline_sync \
    && chmod g+rwx /opt/hyperline-sync /opt/airflow/hyperline_sync

# The official image refuses pip as root: packages go into airflow's environment (~/.local).
USER airflow
WORKDIR /opt/hyperline-sync

# Everything `-r requirements.txt` needs: the pins, and for its `-e .` line the packaging metadata
# (pyproject.toml, README.md) and the packages it installs. Only the product's packages: the rest of
# include/ (the dev tools, the compose example config) stays out of the product image.
COPY --chown=airflow:root requirements.txt constraints.txt pyproject.toml README.md ./
COPY --chown=airflow:root include/hyperline_sync/ include/hyperline_sync/
COPY --chown=airflow:root plugins/hyperline_provider/ plugins/hyperline_provider/

# The project's one install command (same as `make install`). The editable install keeps pointing at
# /opt/hyperline-sync/include/hyperline_sync and /opt/hyperline-sync/plugins/hyperline_provider,
# which docker-compose.yaml bind-mounts for live code.
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

# ---------------------------------------------------------------------------------------- dev
# The product plus the dev tools, as requirements-dev.txt installs them (`-e ./include/hyperline_devtools`)
# but without the test and lint tools: the emulator needs nothing else. Editable, so the compose file's
# mount of ./include/hyperline_devtools runs the code you see.
FROM product AS dev
COPY --chown=airflow:root include/hyperline_devtools/ include/hyperline_devtools/
RUN pip install --no-cache-dir -c constraints.txt -e ./include/hyperline_devtools && pip check

# ------------------------------------------------------------------------------------ default
# `docker build .` without --target gives the product image, never the dev one.
FROM product
