module github.com/muckwatch/muckwatch

go 1.26
