# A comfygen project's image: the base image (deploy/Dockerfile) plus the project folder.
# Build it from the project's root: docker build -f project.Dockerfile -t my-endpoints .
FROM comfygen:0.1.0
COPY . /project
