"""Engine runners: each embedded model (llama.cpp), the image pipeline and the perception
models run in a child process that the API process starts, supervises and restarts. A native
crash there fails the requests that runner was serving, never the server."""
