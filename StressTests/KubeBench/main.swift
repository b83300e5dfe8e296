// Placeholder: the Kubernetes client/informer benchmark (issue 3) is written here.
print("{}")
