"""The chatstream benchmark harness (``make bench``): load generators in processes of their own,
a runner that starts gateway and worker processes on a namespace of their own, and reports."""
