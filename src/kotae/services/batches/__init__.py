"""/v1/batches: input files of requests validated, each line run once by a worker through the
same services as the online endpoints, and the answers written as output and error files."""
