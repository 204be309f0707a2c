// Every value that reaches a task script goes through q(): sample ids, file names and parameters are untrusted.
def q(value) {
    return "'" + value.toString().replace("'", "'\"'\"'") + "'"
}

// The files of a path input (one file, a list of them, or none), each quoted, each after `flag` when one is given.
def qAll(files, flag = null) {
    def list = files instanceof List ? files : (files ? [files] : [])
    return list.collect { f -> flag ? "${flag} ${q(f)}" : q(f) }.join(' ')
}
