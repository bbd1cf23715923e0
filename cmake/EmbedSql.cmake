# EmbedSql.cmake - turn sql/schema.sql, sql/defaults.sql and
# sql/migrations/NNN_*.sql into a C file, so the daemon carries its schema.
#
# cmake -DOUT=file.c -DSQL_DIR=dir -P EmbedSql.cmake

function(sg_c_string var file)
    file(READ "${file}" text)
    string(REPLACE "\\" "\\\\" text "${text}")
    string(REPLACE "\"" "\\\"" text "${text}")
    string(REPLACE "\n" "\\n\"\n    \"" text "${text}")
    set(${var} "\"${text}\"" PARENT_SCOPE)
endfunction()

sg_c_string(schema "${SQL_DIR}/schema.sql")
sg_c_string(defaults "${SQL_DIR}/defaults.sql")
file(GLOB migrations "${SQL_DIR}/migrations/[0-9][0-9][0-9]_*.sql")
list(SORT migrations)

set(out "/* Generated from sql/ by cmake/EmbedSql.cmake: do not edit. */\n")
string(APPEND out "#include \"store.h\"\n\n")
string(APPEND out "const char sg_sql_schema[] =\n    ${schema};\n\n")
string(APPEND out "const char sg_sql_defaults[] =\n    ${defaults};\n\n")
string(APPEND out "const struct sg_migration sg_sql_migrations[] = {\n")
set(count 0)
foreach(m ${migrations})
    get_filename_component(name "${m}" NAME)
    string(SUBSTRING "${name}" 0 3 version)
    math(EXPR version "${version}")
    sg_c_string(body "${m}")
    string(APPEND out "    { ${version}, \"${name}\",\n    ${body} },\n")
    math(EXPR count "${count} + 1")
endforeach()
string(APPEND out "    { 0, NULL, NULL }\n};\n")
string(APPEND out "const size_t sg_sql_nmigrations = ${count};\n")
file(WRITE "${OUT}.tmp" "${out}")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different
                "${OUT}.tmp" "${OUT}")
file(REMOVE "${OUT}.tmp")
