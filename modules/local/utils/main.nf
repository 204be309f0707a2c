// Every value that reaches a task script goes through q(): sample ids, file names and parameters are untrusted.
def q(value) {
    return "'" + value.toString().replace("'", "'\"'\"'") + "'"
}
