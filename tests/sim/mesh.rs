// mesh: next
