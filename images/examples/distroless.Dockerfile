# A task image on distroless that runs under meshinit: meshinit is copied in from its
# image and becomes the entrypoint; the task is the CMD. Options come from MESHINIT_*
# variables (or scuttle's), e.g. set in the Job.
FROM ghcr.io/meshinit/meshinit:0.1.0 AS meshinit

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=meshinit /meshinit /usr/local/bin/meshinit
COPY my-task /usr/local/bin/my-task
ENTRYPOINT ["/usr/local/bin/meshinit", "--"]
CMD ["/usr/local/bin/my-task", "--once"]
