module rosv.test/goserver

go 1.19
